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
import pickle
import re
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch

from . import checks
from .errors import AelibError, CheckpointError
from .files import atomic_write
from .models import AE, MODELS, Config, skeleton
from .recipes import ARCHITECTURE
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
    if not isinstance(model, AE):
        raise AelibError(f"model must be an aelib model such as aelib.build('vae'), got {checks.got(model)}")
    path = checks.path("path", path)
    extra = {key: _storable(value, key) for key, value in extra.items()}
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "version": VERSION, "config": model.config.to_dict(), "state_dict": state,
               "extra": extra}
    atomic_write(path, lambda f: torch.save(payload, f))
    return path


def load(path: str | os.PathLike, expected: str | None = None, map_location="cpu", with_extra: bool = False):
    """The model stored at ``path`` (in eval mode). ``expected``: raise unless it holds this model ("vae", ...).

    Whatever is wrong with the file (another format, a config or weights edited by hand) raises
    :class:`CheckpointError`. The weights' names and shapes are compared with those the config implies before the
    model is built, so a small file whose config asks for a huge model is refused without allocating it.
    """
    path = checks.path("path", path)
    with_extra = checks.flag("with_extra", with_extra)
    if expected is not None:
        checks.one_of("expected", expected, tuple(MODELS))
    if isinstance(map_location, (str, torch.device)):
        map_location = checks.device("map_location", map_location)   # a missing GPU is said as such
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: train one with `python -m aelib train MODEL --out {path}`")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 (torch.load raises many types on a foreign or damaged file)
        if isinstance(err, pickle.UnpicklingError) and "weights only load failed" in str(err).lower():
            found = re.search(r"GLOBAL (\S+)", str(err))    # torch names the first object it refused
            raise CheckpointError(f"{path} is not a safe aelib checkpoint and must not be loaded: it holds pickled "
                                  f"Python objects{f' ({found.group(1)})' if found else ''}, which could run any "
                                  "code when unpickled; aelib.save writes only a config and tensors") from None
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise CheckpointError(f"{path} is not an aelib checkpoint ({first}); save models with aelib.save") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an aelib checkpoint (no {FORMAT!r} marker); save models with "
                              "aelib.save, which stores the config and the state_dict")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path} is an aelib checkpoint of format version {payload.get('version')!r}; this "
                              f"aelib reads version {VERSION}: retrain the model or use the matching aelib")
    for key in ("config", "state_dict"):
        if key not in payload:
            raise CheckpointError(f"{path} has no {key!r}: it was damaged or edited; retrain the model")
    for key, what in (("config", "config"), ("state_dict", "state_dict"), ("extra", "extra values")):
        if not isinstance(payload.get(key, {}), dict):
            raise CheckpointError(f"{path} is damaged: its {what} must be a dict, got a "
                                  f"{type(payload[key]).__name__}; retrain the model")
    config = _config(path, payload["config"])
    if expected is not None and config.name != expected:
        raise CheckpointError(f"{path} holds a {config.name!r} model, not {expected!r}")
    model = skeleton(config)        # on the meta device: names and shapes, no memory
    problem = _weights_problem(model.state_dict(), payload["state_dict"])
    if problem:
        raise CheckpointError(f"{path}: the weights do not fit its {config.name!r} config ({problem}); was it saved "
                              f"by an older aelib, or edited? Retrain it with `python -m aelib train {config.name}`")
    model = model.to_empty(device="cpu")
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return (model, _restored(payload.get("extra", {}))) if with_extra else model


def _config(path: Path, stored: dict) -> Config:
    """The :class:`Config` stored in a checkpoint; CheckpointError if it is incomplete or invalid."""
    if "name" not in stored:
        raise CheckpointError(f"{path} is damaged: its config has no 'name'; retrain the model")
    unknown = sorted(str(key) for key in stored if key not in {f.name for f in fields(Config)})
    if unknown:
        raise CheckpointError(f"{path} holds an invalid model config (unknown option(s) {', '.join(unknown)}); "
                              "was it saved by a newer aelib?")
    for key in ARCHITECTURE:   # None would mean "the recipe's": a checkpoint must say what it holds
        if key in stored and stored[key] is None:
            raise CheckpointError(f"{path} holds an invalid model config ({key} must be given, got None)")
    try:
        return Config(**stored)
    except AelibError as err:
        raise CheckpointError(f"{path} holds an invalid model config ({err})") from None


def _weights_problem(expected: dict, stored: dict) -> str | None:
    """What keeps ``stored`` from being the state_dict ``expected`` describes (names, types, shapes), or None."""
    missing = [key for key in expected if key not in stored]
    unexpected = [str(key) for key in stored if key not in expected]
    if missing or unexpected:
        return "; ".join(f"{what} {', '.join(keys[:3])}" for what, keys in (("missing", missing),
                                                                           ("unexpected", unexpected)) if keys)
    for key, want in expected.items():
        value = stored[key]
        if not torch.is_tensor(value):
            return f"{key} is a {type(value).__name__}, not a tensor"
        if not value.is_floating_point():
            return f"{key} holds {value.dtype} values, not floats"
        if value.layout != torch.strided:
            return f"{key} is a {value.layout} tensor, not a dense one"
        if value.shape != want.shape:
            return f"{key} has shape {tuple(value.shape)}, its config needs {tuple(want.shape)}"
    return None


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
