"""aelib: the autoencoder family (AE, VAE, CVAE, AAE, CAAE) on MNIST, small enough to read in one sitting.

    import aelib
    data = aelib.load_mnist()                      # full MNIST, or the 5,000 offline digits
    model = aelib.build("vae", latent_dim=2)
    history = aelib.fit(model, data, epochs=10)
    aelib.save(model, "checkpoints/vae.pt")

The core is this folder; ``aelib.course`` (notebook helpers), ``aelib.explorers`` (widgets that decode in the
browser) and ``aelib.site`` (the course website) sit on top and are imported on first use.
"""
from . import evaluate, losses, priors
from .checkpoints import load, save
from .data import MNIST, Batches, load_mnist, load_test_split
from .errors import AelibError, CheckpointError, DataError, DivergenceError
from .models import AAE, AE, CAAE, CVAE, MODELS, VAE, Config, build, count_parameters
from .threads import use_threads
from .train import History, fit, pick_device, seed_everything

__version__ = "0.1.0"
_ON_FIRST_USE = {   # aelib.NAME -> the module it loads (they import matplotlib, ipywidgets, nbconvert, ...)
    **{name: f"aelib.{name}" for name in ("metrics", "classifier", "recipes", "checks", "threads", "cli",
                                          "course", "explorers", "site")},
    **{name: f"aelib.course.{name}" for name in ("notebook", "plotting", "posterior", "figures", "architecture",
                                                 "elbo_lab")},
    # former names, so that notebooks and code written for them keep working
    "widgets": "aelib.explorers", "posterior_widget": "aelib.explorers.posterior",
    "diagrams": "aelib.course.architecture", "elbo": "aelib.course.elbo_lab",
}


def __getattr__(name):
    """``aelib.explorers``, ``aelib.notebook``, ...: loaded on first use."""
    if name in _ON_FIRST_USE:
        import importlib

        return importlib.import_module(_ON_FIRST_USE[name])
    raise AttributeError(f"module 'aelib' has no attribute {name!r}")


__all__ = [
    "AE", "AAE", "CAAE", "CVAE", "VAE", "MODELS", "Config", "build", "count_parameters",
    "MNIST", "Batches", "load_mnist", "load_test_split",
    "fit", "History", "pick_device", "seed_everything", "use_threads",
    "save", "load", "evaluate", "losses", "priors",
    "AelibError", "CheckpointError", "DataError", "DivergenceError",
]
