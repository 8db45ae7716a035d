"""The argument checks every public function and CLI option shares, so bad input is refused the same way everywhere.

Each check returns the value (normalised: a NumPy integer becomes an int, a path a Path) or raises
:class:`~aelib.errors.AelibError` with one sentence naming the argument, what it must be and what it got, e.g.
"epochs must be a positive whole number, got 2.5". Python counts ``True`` as the int 1 and ``"2"`` is not a number,
so both are refused where a number belongs; a float is refused where a count belongs, even 2.0.
"""
from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

import numpy as np
import torch

from .errors import AelibError

MAX_SEED = 2 ** 32 - 1   # NumPy's limit; seed_everything seeds NumPy too
IMAGE_SHAPE = (1, 28, 28)   # an MNIST image: one channel of 28 x 28 pixels
N_PIXELS = 28 * 28
N_CLASSES = 10


def got(value) -> str:
    """``value`` as an error message shows it: its repr, followed by its type unless it is None, a bool, an int or a
    fractional float (so that '2', 2.0 and np.int64(2) can be told from 2)."""
    text = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    if value is None or type(value) in (bool, int) or type(value) is float and not value.is_integer():
        return text
    kind = type(value).__name__
    return f"{text} ({'an' if kind[0] in 'aeiou' else 'a'} {kind})"


def _is_whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def whole(name: str, value, low: int | None = None, high: int | None = None, what: str = "whole number") -> int:
    """``value`` as an int, if it is an integer (not a bool, not a float) within [low, high]."""
    if not _is_whole(value) or low is not None and value < low or high is not None and value > high:
        if low == 1 and high is None:
            what = f"positive {what}"
        elif high is not None:
            what = f"{what} from {low} to {high}"
        elif low is not None:
            what = f"{what} of at least {low}"
        raise AelibError(f"{name} must be a {what}, got {got(value)}")
    return int(value)


def positive_int(name: str, value) -> int:
    """A count such as ``epochs`` or ``batch_size``: a whole number >= 1."""
    return whole(name, value, 1)


def seed(name: str, value) -> int:
    """A random seed: a whole number from 0 to 2**32 - 1."""
    return whole(name, value, 0, MAX_SEED)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def positive_float(name: str, value) -> float:
    """A rate such as ``lr``: a finite number > 0 (NaN and infinity refused)."""
    if not _is_real(value) or not math.isfinite(value) or value <= 0:
        raise AelibError(f"{name} must be a positive finite number, got {got(value)}")
    return float(value)


def nonnegative_float(name: str, value) -> float:
    """An amount such as ``free_bits``: a finite number >= 0 (NaN and infinity refused)."""
    if not _is_real(value) or not math.isfinite(value) or value < 0:
        raise AelibError(f"{name} must be a finite number of at least 0, got {got(value)}")
    return float(value)


def fraction(name: str, value) -> float:
    """A rate such as ``dropout``: a number in [0, 1)."""
    if not _is_real(value) or not 0 <= value < 1:    # False for NaN
        raise AelibError(f"{name} must be a number from 0 to below 1, got {got(value)}")
    return float(value)


def flag(name: str, value) -> bool:
    """A switch: True or False (not 1, not "no", which is true)."""
    if not isinstance(value, (bool, np.bool_)):
        raise AelibError(f"{name} must be True or False, got {got(value)}")
    return bool(value)


def one_of(name: str, value, choices) -> str:
    """A name from ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise AelibError(f"{name} must be one of {', '.join(choices)}, got {got(value)}")
    return value


def widths(name: str, value) -> tuple[int, ...]:
    """Layer widths: a non-empty tuple or list of positive whole numbers (a single int means one layer)."""
    if _is_whole(value):
        value = (value,)
    if not isinstance(value, (tuple, list)) or not value or not all(_is_whole(w) and w >= 1 for w in value):
        raise AelibError(f"{name} must be a non-empty tuple of positive whole numbers such as (512, 256), "
                         f"got {got(value)}")
    return tuple(int(w) for w in value)


def path(name: str, value, what: str = "file") -> Path:
    """A ``what`` ("file" or "folder") path: a str or os.PathLike."""
    if not isinstance(value, (str, os.PathLike)):
        raise AelibError(f"{name} must be a {what} path (a str or pathlib.Path), got {got(value)}")
    return Path(value)


def device(name: str, value) -> torch.device:
    """A device this machine has: 'cpu', 'cuda', 'cuda:N' or 'mps' (a str or torch.device)."""
    try:
        dev = torch.device(value) if isinstance(value, (str, torch.device)) else None
    except RuntimeError:
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps"):
        raise AelibError(f"{name} must be 'cpu', 'cuda', 'cuda:N' or 'mps' (or None to pick the fastest), "
                         f"got {got(value)}")
    if dev.type == "cuda":
        available = torch.cuda.is_available() and (dev.index or 0) < torch.cuda.device_count()
    else:
        available = dev.type == "cpu" or torch.backends.mps.is_available()
    if not available:
        raise AelibError(f"{name} {str(dev)!r} is not available here: use 'cpu', or None to pick the fastest "
                         "device this machine has")
    return dev


def generator(name: str, value) -> torch.Generator | None:
    """None or a CPU ``torch.Generator`` (aelib draws its random numbers on the CPU)."""
    if value is not None and (not isinstance(value, torch.Generator) or value.device.type != "cpu"):
        raise AelibError(f"{name} must be a torch.Generator on the CPU, e.g. torch.Generator().manual_seed(0), "
                         f"or None, got {got(value)}")
    return value


# ------------------------------------------------------------------------------------------ images and labels
def check_images(x) -> torch.Tensor:
    """Images as float tensor (N, 1, 28, 28); also accepts (N, 28, 28) and (N, 784). Clear error otherwise."""
    if not torch.is_tensor(x):
        raise AelibError(f"images must be a torch.Tensor, got {type(x).__name__}; use torch.as_tensor(x)")
    if not x.is_floating_point():
        raise AelibError(f"images must be floats in [0, 1], got dtype {x.dtype}; for 0..255 bytes use x.float() / 255")
    if x.dim() == 2 and x.shape[1] == N_PIXELS or x.dim() == 3 and tuple(x.shape[1:]) == IMAGE_SHAPE[1:]:
        x = x.reshape(-1, *IMAGE_SHAPE)
    if x.dim() != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
        raise AelibError(f"images must have shape (N, 1, 28, 28) (or (N, 784)), got {tuple(x.shape)}")
    check_pixels(x)
    return x


def check_pixels(x: torch.Tensor) -> None:
    """Raise AelibError unless every pixel of ``x`` is a number in [0, 1]: the loss treats pixels as probabilities,
    so 0..255 values train to losses of ~1e11 and NaN pixels give NaN codes. One pass over ``x`` (min and max)."""
    if not x.numel():
        return
    low, high = (v.item() for v in torch.aminmax(x.detach()))
    if low >= 0 and high <= 1:      # False for NaN
        return
    if not torch.isfinite(x).all():
        kinds = " or ".join(kind for kind, found in (("NaN", x.isnan().any()), ("infinite", x.isinf().any())) if found)
        images = int((~torch.isfinite(x)).flatten(1).any(1).sum())
        raise AelibError(f"{images:,} of {len(x):,} images contain {kinds} pixel values; pixels must be numbers in "
                         "[0, 1]: fix or drop those images")
    fix = "divide by 255 (x / 255)" if high > 1 and low >= 0 and high <= 255 else \
        "rescale them to [0, 1] (e.g. undo a normalisation: x * std + mean)"
    raise AelibError(f"images must be floats in [0, 1], got values from {low:.4g} to {high:.4g}: {fix}")


def check_labels(y, n: int) -> torch.Tensor:
    """Digit labels as int64 of shape (n,); an int means "this digit for all n". Clear error otherwise."""
    try:
        y = torch.as_tensor(y)
    except (TypeError, ValueError, RuntimeError):
        raise AelibError(f"labels must be integers 0..9 (an int, a list or a tensor), got {got(y)}") from None
    if y.is_floating_point() or y.dtype == torch.bool or y.is_complex():
        raise AelibError(f"labels must be integers 0..9, got dtype {y.dtype}")
    if y.dim() == 0:
        y = y.expand(n)
    if tuple(y.shape) != (n,):
        raise AelibError(f"labels must have shape ({n},), one per image, got {tuple(y.shape)}")
    if n and (int(y.min()) < 0 or int(y.max()) >= N_CLASSES):
        raise AelibError(f"labels must be digits 0..{N_CLASSES - 1}, got values from {int(y.min())} to {int(y.max())}")
    return y.long()
