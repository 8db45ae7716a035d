"""Checkpoints as {format, version, config, state_dict}: never a pickled model.

``load`` uses ``torch.load(weights_only=True)``, which only unpickles tensors and plain containers, so opening a
checkpoint cannot run code. ``save`` writes a temporary file and renames it over the target, so a crash mid-write
never leaves half a checkpoint (nor destroys the previous good one).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .errors import AelibError, CheckpointError
from .files import atomic_write
from .models import AE, Config, build

FORMAT = "aelib-checkpoint"
VERSION = 1


def save(model: AE, path: str | os.PathLike, **extra) -> Path:
    """Write ``model`` (config + weights, plus any plain ``extra`` such as a loss history) to ``path`` atomically."""
    path = Path(path)
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
    return (model, payload.get("extra", {})) if with_extra else model
