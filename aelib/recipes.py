"""How each model is trained by default, and the one function that trains it: the CLI (``python -m aelib train``),
``python -m aelib figures`` and ``benchmarks/quality_all.py`` all go through :func:`new_model` and :func:`train`.

(The start of issue 13's recipe table: epochs so far; architecture, batch size and learning-rate defaults still live
in ``models.Config`` and ``train.fit``.)
"""
from __future__ import annotations

DEFAULT_EPOCHS = 20
# The CVAE gets more: on the 4,000 offline digits the judge read its sampled 1s as 1s in 87-90% of cases after
# 40 epochs and 90-95% after 60 (three seeds; aelib.models.MLP; the split then sorted by digit); on the shuffled split
# 99/83/82% after 40 and 99/88/86% after 60 (seeds 0/1/2): a few points for two seeds of three. Every other model gets
# DEFAULT_EPOCHS.
MODEL_EPOCHS = {"cvae": 60}


def default_epochs(model_name: str) -> int:
    """The epochs `python -m aelib train MODEL` (and ``figures``, and the benchmarks) train for by default."""
    return MODEL_EPOCHS.get(model_name, DEFAULT_EPOCHS)


def new_model(name: str, seed: int = 0, **config):
    """``aelib.build(name, **config)`` with its initial weights drawn from ``seed``: the same seed, the same model."""
    import torch

    from . import checks
    from .models import build

    torch.manual_seed(checks.seed("seed", seed))
    return build(name, **config)


def train(model, data, epochs: int | None = None, seed: int = 0, **fit_options):
    """``aelib.fit(model, data, ...)`` for ``epochs`` (default: the model's :func:`default_epochs`) with the same
    ``seed`` as :func:`new_model`; ``fit_options`` (batch_size, lr, binarize, shift, progress) go to ``fit``."""
    from .train import fit

    return fit(model, data, epochs=epochs or default_epochs(model.name), seed=seed, **fit_options)
