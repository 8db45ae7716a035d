"""One training loop for all five models: ``history = fit(model, data, epochs=10)``.

Each model knows its own step (the AAE's reconstruction -> discriminator -> generator phases live in
``AAE.training_step``), so the loop only serves batches, averages the loss terms and reports progress.
"""
from __future__ import annotations

import functools
import math
import random
from collections import defaultdict
from typing import Callable

import numpy as np
import torch

from . import checks
from .checks import check_images, check_labels
from .data import MNIST, OFFLINE_TRAIN_SIZE, Batches, check_shift
from .errors import AelibError, DivergenceError
from .models import AE
from .recipes import recipe
from .threads import cpu_snapshot, use_threads

PROGRESS_EVERY = 10      # batches between progress-bar refreshes (each refresh reads the loss off the device)
# An epoch whose mean loss is this many times the first batch's (the model before training) has diverged. Measured on
# 1,000 offline digits: lr=0.1 spikes one batch to ~35x and the epoch to ~4x, then recovers; lr=1 gives ~2,000x.
EXPLOSION_FACTOR = 100


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA, else Apple's MPS, else the CPU."""
    if device is not None:
        return checks.device("device", device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices), so a run can be repeated exactly on the CPU."""
    seed = checks.seed("seed", seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class History(list):
    """One dict of mean loss terms per epoch, e.g. ``history[-1]["loss"]``; ``history.series("kl")`` is a list."""

    def series(self, key: str) -> list[float]:
        return [epoch[key] for epoch in self]


def scaled_epochs(epochs: int, n_train: int, minimum: int = 1) -> int:
    """``epochs`` chosen for the 4,000 offline training digits, for a training set of ``n_train`` digits: on a larger
    set fewer, so that about as many images are seen (at least ``minimum``); on a smaller one unchanged."""
    if n_train <= OFFLINE_TRAIN_SIZE:
        return epochs
    return max(minimum, round(epochs * OFFLINE_TRAIN_SIZE / n_train))


def fit(model: AE, data, epochs: int | None = None, batch_size: int | None = None, lr: float | None = None,
        seed: int = 0, callback: Callable[[int, dict, AE], None] | None = None, device=None,
        binarize: bool | None = None, shift: int | None = None, progress: bool = True) -> History:
    """Train ``model`` and return its per-epoch loss history.

    ``epochs``, ``batch_size``, ``lr``, ``binarize`` and ``shift`` left out (or None) come from the model's recipe
    (:data:`aelib.recipes.RECIPES`: 20 epochs, the CVAE 60 and the CAAE 40; batches of 64, the VAE 32; lr 1e-3;
    no augmentation but the CVAE's 1-pixel shifts).

    ``data``: an :class:`~aelib.data.MNIST` (its training split is used), a tuple ``(images, labels)`` or a tensor
    of images. ``callback(epoch, losses, model)`` runs after each epoch (notebooks use it to draw as they train).
    ``binarize`` and ``shift`` augment the training images (see :class:`~aelib.data.Batches`).
    The same seed gives the same losses on the CPU.

    A NaN or infinite loss, or an epoch whose mean loss is over ``EXPLOSION_FACTOR`` times the first batch's, stops
    training with :class:`~aelib.errors.DivergenceError`. Whatever stops it (divergence, Ctrl-C, an error in
    ``callback``), the finished epochs are not lost: their history is the exception's ``history`` attribute and
    ``model.history`` (the history of the model's latest ``fit``, also set when it succeeds), and the model is left
    in eval mode, usable, with the weights it had when it stopped.
    """
    if not isinstance(model, AE):
        raise AelibError(f"model must be an aelib model such as aelib.build('vae'), got {checks.got(model)}")
    defaults = recipe(model.name)
    epochs = defaults.epochs if epochs is None else epochs
    batch_size = defaults.batch_size if batch_size is None else batch_size
    lr = defaults.lr if lr is None else lr
    binarize = defaults.binarize if binarize is None else binarize
    shift = defaults.shift if shift is None else shift
    epochs, batch_size = checks.positive_int("epochs", epochs), checks.positive_int("batch_size", batch_size)
    lr, seed, shift = checks.positive_float("lr", lr), checks.seed("seed", seed), check_shift(shift)
    binarize, progress = checks.flag("binarize", binarize), checks.flag("progress", progress)
    if callback is not None and not callable(callback):
        raise AelibError(f"callback must be a function callback(epoch, losses, model) or None, "
                         f"got {checks.got(callback)}")
    device = pick_device(device)
    use_threads(device=device)
    x, y = _training_tensors(data)
    if y is None and model.uses_labels:
        raise AelibError(f"{model.name!r} needs labels to train: pass data as an MNIST object or (images, labels)")
    seed_everything(seed)
    model.to(device).train()
    x = x.to(next(model.parameters()).dtype)   # float64 images train a float32 model, as encode takes them
    batches = Batches(x, y if model.uses_labels else None, batch_size, seed=seed, binarize=binarize, shift=shift,
                      device=device)
    optimizers = model.configure_optimizers(lr)
    history = model.history = History()
    first_loss = None   # the untrained model's loss: the yardstick for an exploding one
    bar = _progress_bar(epochs * len(batches), f"{model.name} ", disable=not progress)
    try:
        for epoch in range(1, epochs + 1):
            sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=device))
            since = cpu_snapshot()
            for i, (xb, yb) in enumerate(batches, 1):
                terms = model.training_step(xb, yb, optimizers)
                for key, value in terms.items():
                    sums[key] += value * len(xb)
                if first_loss is None:
                    first_loss = terms["loss"].item()
                if i % PROGRESS_EVERY == 0 or i == len(batches):
                    loss = terms["loss"].item()
                    if not math.isfinite(loss):    # stop now rather than at the end of the epoch
                        raise _diverged(epoch, f"the loss became {loss}", lr)
                    bar.update(i - bar.n + (epoch - 1) * len(batches))
                    bar.set_postfix_str(f"epoch {epoch}/{epochs} loss {loss:.1f}", refresh=False)
            means = {key: value.item() / len(x) for key, value in sums.items()}
            _check_divergence(epoch, means, first_loss, lr)
            history.append(means)
            use_threads(device=device, since=since)   # the cores other processes left free during this epoch
            if callback is not None:
                callback(epoch, means, model)
    except BaseException as err:   # Ctrl-C, divergence, an error in the callback: keep what was learnt
        try:
            err.history = history
        except (AttributeError, TypeError):
            pass
        raise
    finally:
        bar.close()
        model.eval()
    return history


def _check_divergence(epoch: int, means: dict[str, float], first_loss: float, lr: float) -> None:
    """Raise DivergenceError if an epoch's mean loss terms are not finite or the loss exploded."""
    for key, value in means.items():
        if not math.isfinite(value):
            raise _diverged(epoch, f"its mean {key} term is {value}", lr)
    limit = EXPLOSION_FACTOR * max(abs(first_loss), 1.0)
    if means["loss"] > limit:
        raise _diverged(epoch, f"its mean loss is {means['loss']:.3g}, over {EXPLOSION_FACTOR} times that of the "
                               f"first batch ({first_loss:.3g})", lr)


def _diverged(epoch: int, what: str, lr: float) -> DivergenceError:
    smaller = min(lr / 10, 1e-3)    # 1e-3, Adam's usual rate, trains every model here
    return DivergenceError(f"training diverged in epoch {epoch}: {what}; train again with a smaller learning rate "
                           f"(e.g. lr={smaller:g} instead of {lr:g})")


def _training_tensors(data):
    if isinstance(data, MNIST):
        x, y = data.train_x, data.train_y
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
    elif torch.is_tensor(data):
        x, y = data, None
    else:
        raise AelibError("data must be an MNIST object (from load_mnist), a tuple (images, labels) or a tensor of "
                         f"images, got {type(data).__name__}")
    x = check_images(x)
    if not len(x):
        raise AelibError("there are no images to train on: data holds 0 training images")
    if y is not None:
        y = check_labels(y, len(x))
    return x, y


def _progress_bar(total: int, desc: str, disable: bool):
    from tqdm.auto import tqdm
    from tqdm.notebook import tqdm as notebook_tqdm

    kind = _finished_line_bar_class() if issubclass(tqdm, notebook_tqdm) and not disable else tqdm
    return kind(total=total, desc=desc, disable=disable, unit="batch", leave=True, mininterval=0.5)


@functools.cache
def _finished_line_bar_class():
    from IPython.display import display
    from tqdm.notebook import tqdm as notebook_tqdm
    from tqdm.std import tqdm as text_tqdm

    class FinishedLineBar(notebook_tqdm):
        """tqdm's live bar in a notebook that leaves one line of text when it closes: a saved notebook then shows
        the finished bar (in JupyterLab, on GitHub, on the website), not the widget's stored "0%" fallback."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, display=False, **kwargs)
            self._handle = display(self.container, display_id=True)

        def close(self):
            if self.disable:
                return
            super().close()
            self._handle.update({"text/plain": text_tqdm.__str__(self)}, raw=True)

    return FinishedLineBar

