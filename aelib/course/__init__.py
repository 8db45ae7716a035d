"""What only the notebooks need, on top of the core: the setup cell and claim checks (``notebook``), the ELBO lab
of notebook 02 (``elbo_lab``), the true posterior of a 2-D VAE on a grid (``posterior``), plots (``plotting``),
architecture drawings (``architecture``) and the PNGs of figures/ (``figures``). Each is imported on first use
(``aelib.course.plotting``): they pull in matplotlib."""
import importlib

MODULES = ("notebook", "elbo_lab", "posterior", "plotting", "architecture", "figures")


def __getattr__(name):
    if name in MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'aelib.course' has no attribute {name!r}")
