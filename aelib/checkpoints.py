"""Checkpoints as {format, version, config, state_dict}: never a pickled model.

``load`` uses ``torch.load(weights_only=True)``, which only unpickles tensors and plain containers, so opening a
checkpoint cannot run code. ``save`` writes a temporary file and renames it over the target, so a crash mid-write
never leaves half a checkpoint (nor destroys the previous good one).

The ``extra`` values ``save`` accepts are exactly those ``load`` reads back: Python scalars, strings, bytes, tensors and
lists / tuples / dicts / sets of them, plus NumPy scalars (stored as Python scalars), NumPy arrays (stored as tensors,
returned as arrays) and the :class:`~aelib.train.History` that ``fit`` returns (stored as a list of dicts, returned as
a History under the key ``history``). Anything else is refused before the file is touched.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .errors import AelibError, CheckpointError
from .files import atomic_write
from .models import AE, Config, build
from .train import History

FORMAT = "aelib-checkpoint"
VERSION = 1
NUMPY_TAG = "__aelib_numpy_array__"   # {NUMPY_TAG: tensor} in a checkpoint is a NumPy array in ``extra``
_SCALARS = (type(None), bool, int, float, complex, str, bytes)


def save(model: AE, path: str | os.PathLike, **extra) -> Path:
    """Write ``model`` (config + weights, plus any plain ``extra`` such as a loss history) to ``path`` atomically.

    ``extra`` is checked first: a value ``load`` could not read back raises :class:`CheckpointError` and leaves the
    file at ``path`` as it was.
    """
    path = Path(path)
    extra = {key: _storable(value, key) for key, value in extra.items()}
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "version": VERSION, "config": model.config.to_dict(), "state_dict": state,
               "extra": extra}
    atomic_write(path, lambda f: torch.save(payload, f))
    return path


def load(path: str | os.PathLike, expected: str | None = None, map_location="cpu", with_extra: bool = False):
    """The model stored at ``path`` (in eval mode). ``expected``: raise unless it holds this model ("vae", ...)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: train one with `python -m aelib train MODEL --out {path}`")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001: torch.load raises many types on a foreign or damaged file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path} is not an aelib checkpoint ({first[:200]}); save models with aelib.save") \
            from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an aelib checkpoint (no {FORMAT!r} marker); save models with "
                              "aelib.save, which stores the config and the state_dict")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path} is an aelib checkpoint of format version {payload.get('version')!r}; this "
                              f"aelib reads version {VERSION}: retrain the model or use the matching aelib")
    try:
        config = Config(**payload["config"])
    except (TypeError, AelibError) as err:
        raise CheckpointError(f"{path} holds an invalid model config ({err})") from None
    if expected is not None and config.name != expected:
        raise CheckpointError(f"{path} holds a {config.name!r} model, not {expected!r}")
    model = build(config.name, **{k: v for k, v in config.to_dict().items() if k != "name"})
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError) as err:
        raise CheckpointError(f"{path}: the weights do not fit its {config.name!r} config; was it saved by an "
                              f"older aelib? Retrain it with `python -m aelib train {config.name}` "
                              f"({str(err)[:200]})") from None
    model.eval()
    return (model, _restored(payload.get("extra", {}))) if with_extra else model


def _storable(value, where: str):
    """``value`` as plain data that ``torch.load(weights_only=True)`` reads back; CheckpointError if it cannot be."""
    if type(value) in _SCALARS:
        return value
    if torch.is_tensor(value):
        return value.detach().cpu()
    if isinstance(value, np.generic):
        return _storable(value.item(), where)
    if isinstance(value, np.ndarray):
        try:
            return {NUMPY_TAG: torch.from_numpy(np.ascontiguousarray(value)).clone()}
        except TypeError:
            raise CheckpointError(f"a checkpoint cannot store {where}, a NumPy array of {value.dtype} values: "
                                  "convert it to numbers or to a list before saving") from None
    if type(value) in (list, tuple, set, History):
        items = [_storable(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return tuple(items) if type(value) is tuple else set(items) if type(value) is set else items
    if type(value) is dict:
        return {_storable(k, f"a key of {where}"): _storable(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise CheckpointError(f"a checkpoint cannot store {where}, a {type(value).__name__}: pass numbers, strings, "
                          "tensors, NumPy arrays, or lists and dicts of them (e.g. str() of a path)")


def _restored(extra: dict) -> dict:
    """``extra`` as saved: NumPy arrays back from tensors, the ``history`` list back as a :class:`History`."""
    def restore(value):
        if type(value) is dict:
            if len(value) == 1 and torch.is_tensor(value.get(NUMPY_TAG)):
                return value[NUMPY_TAG].numpy()
            return {k: restore(v) for k, v in value.items()}
        if type(value) in (list, tuple):
            return type(value)(restore(v) for v in value)
        return value

    extra = restore(extra)
    history = extra.get("history") if isinstance(extra, dict) else None
    if isinstance(history, list) and all(isinstance(epoch, dict) for epoch in history):
        extra["history"] = History(history)
    return extra
