"""``python -m aelib figures``: regenerate every PNG in figures/ that the README and notebooks show.

Trains the five models as ``python -m aelib train MODEL`` does (or loads ``checkpoints/MODEL.pt`` when it exists and
``--retrain`` is not given), then draws: an architecture diagram per model, the "every digit on demand" grids of the
CVAE and CAAE, the latent maps and samples of all five side by side, and the VAE's manifold. Each PNG is written to a
temporary file and renamed, so a failed run never leaves a half-written figure or destroys a good one.
"""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib

from ..errors import AelibError
from ..files import atomic_write, why_not_writable
from ..recipes import default_epochs

NAMES = ("ae", "vae", "cvae", "aae", "caae")


def save_figure(fig, path: Path, dpi: int = 80) -> Path:
    """Write ``fig`` to ``path`` atomically (temporary file + rename)."""
    import matplotlib.pyplot as plt

    try:
        atomic_write(path, lambda f: fig.savefig(f, dpi=dpi, format="png", metadata={"Software": None}))
    finally:
        plt.close(fig)
    return path


def trained_models(data, checkpoints: Path, epochs: int | None, retrain: bool, progress: bool = True) -> dict:
    import aelib

    models = {}
    for name in NAMES:
        path = checkpoints / f"{name}.pt"
        if path.exists() and not retrain:
            models[name] = aelib.load(path, expected=name)
            print(f"{name}: loaded {path}")
            continue
        model = aelib.build(name, seed=0)
        n_epochs = epochs or default_epochs(name)
        aelib.fit(model, data, epochs=n_epochs, progress=progress)
        aelib.save(model, path)
        models[name] = model.cpu()
        print(f"{name}: trained {n_epochs} epochs, saved {path}")
    return models


def make_figures(out: str | os.PathLike = "figures", checkpoints: str | os.PathLike = "checkpoints",
                 epochs: int | None = None, retrain: bool = False, data_root=None, progress: bool = True) -> list[Path]:
    matplotlib.use("Agg")
    import torch

    import aelib

    from . import architecture, plotting

    out, checkpoints = Path(out), Path(checkpoints)
    for option, folder in (("--out", out), ("--checkpoints", checkpoints)):   # before any training, not after
        problem = why_not_writable(folder)
        if problem:
            raise AelibError(f"cannot write to {folder} ({option}): {problem}; give a folder you can write to")
    data = aelib.load_mnist(data_root)
    models = trained_models(data, checkpoints, epochs, retrain, progress)
    x, y = data.test_x, data.test_y
    written = [save_figure(architecture.draw(name), out / f"architecture_{name}.png") for name in NAMES]
    generator = torch.Generator().manual_seed(0)
    for name in ("cvae", "caae"):
        written.append(save_figure(plotting.digit_grid(models[name], n=10, generator=generator),
                                   out / f"{name}_digits.png"))
    written.append(save_figure(plotting.manifold(models["vae"], "quantiles", n=15), out / "vae_manifold.png"))

    fig = plotting.latent_maps({name.upper(): models[name] for name in NAMES}, x, y,
                               title=f"codes of {len(x):,} test digits, samples and reconstructions; "
                                     f"data: {data.source}")
    written.append(save_figure(fig, out / "latent_maps.png"))
    for path in written:
        print(f"wrote {path}")
    return written
