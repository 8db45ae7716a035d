"""aelib: the autoencoder family (AE, VAE, CVAE, AAE, CAAE) on MNIST, small enough to read in one sitting.

    import aelib
    data = aelib.load_mnist()                      # full MNIST, or the 5,000 offline digits
    model = aelib.build("vae", latent_dim=2)
    history = aelib.fit(model, data, epochs=10)
    aelib.save(model, "checkpoints/vae.pt")
"""
from . import evaluate, losses, priors
from .checkpoints import load, save
from .data import MNIST, Batches, load_mnist, load_test_split
from .errors import AelibError, CheckpointError, DataError, DivergenceError
from .models import AE, AAE, CAAE, CVAE, MODELS, VAE, Config, build, count_parameters
from .train import History, fit, pick_device, seed_everything, use_threads

__version__ = "0.1.0"
_LAZY = ("plotting", "widgets", "diagrams", "figures", "metrics", "classifier", "elbo",
         "posterior", "notebook", "recipes")  # import on first use


def __getattr__(name):
    """``aelib.plotting``, ``aelib.widgets``, ...: loaded on first use (they import matplotlib / ipywidgets)."""
    if name in _LAZY:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'aelib' has no attribute {name!r}")


__all__ = [
    "AE", "AAE", "CAAE", "CVAE", "VAE", "MODELS", "Config", "build", "count_parameters",
    "MNIST", "Batches", "load_mnist", "load_test_split",
    "fit", "History", "pick_device", "seed_everything", "use_threads",
    "save", "load", "evaluate", "losses", "priors", "notebook",
    "AelibError", "CheckpointError", "DataError", "DivergenceError",
]
