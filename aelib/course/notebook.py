"""The setup at the top of every notebook: seed, device, figure style, quick mode and the training budget.

Quick mode (set ``CI`` or ``AELIB_QUICK`` in the environment; the test suite does) trains for a tenth of the
epochs so the whole collection runs in minutes. The numbers a quick run prints are then rougher, not different in kind.

The epochs a notebook names are passes over the 4,000 training digits of the offline sample, the data every stored
output was made with. :meth:`Setup.load_data` loads full MNIST where it can be downloaded; then
:meth:`Setup.epochs` scales the epochs down so that a model still sees about as many images (a notebook asking for
20 epochs trains 1 pass over the 60,000 digits instead of 20), and the notebooks evaluate on 1,000 of the 10,000 test
digits (100 of each digit). Without the scaling a notebook would run 15 times longer on full MNIST.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import torch

from ..data import MNIST, OFFLINE_TRAIN_SIZE, load_mnist
from ..threads import use_threads
from ..train import pick_device, scaled_epochs, seed_everything

QUICK_DIVISOR = 10            # quick mode trains for 1/10 of the epochs (at least 1)
BUDGET_TRAIN_SIZE = OFFLINE_TRAIN_SIZE   # a notebook's epochs are passes over this many images
NOTEBOOK_TEST_PER_DIGIT = 100  # the notebooks evaluate on at most 100 test digits of each class


class ClaimError(AssertionError):
    """A sentence of a notebook's prose that its own output no longer bears out."""


def check(holds, claim: str) -> None:
    """Print ``✓ claim`` when ``holds`` is true: the prose beside the output says ``claim``, and this line proves it.

    When it is false, a full run stops with :class:`ClaimError` naming the claim (the prose must be fixed before the
    notebook is saved); a quick run (short training, rough numbers) prints ``✗ ... (not shown by this quick run)``
    and goes on."""
    holds = bool(holds)
    if holds:
        print(f"✓ {claim}")
    elif quick_mode():
        print(f"✗ {claim} (not shown by this quick run: its training is a tenth of the full one)")
    else:
        raise ClaimError(f"the notebook says '{claim}', but this run does not show it: fix the prose (or the "
                         "code) before saving the notebook")


def quick_mode() -> bool:
    """True when ``CI`` or ``AELIB_QUICK`` is set to anything but "" / "0" / "false"."""
    return any(os.environ.get(var, "").lower() not in ("", "0", "false", "no") for var in ("CI", "AELIB_QUICK"))


@dataclass
class Setup:
    seed: int
    device: torch.device
    quick: bool
    train_size: int = BUDGET_TRAIN_SIZE   # training digits of the data loaded by load_data

    def epochs(self, full: int) -> int:
        """The epochs to train for a notebook that names ``full`` epochs over the 4,000 offline digits: a tenth
        in quick mode; on a larger training set, fewer, so that about as many images are seen (at least 1)."""
        return scaled_epochs(max(1, full // QUICK_DIVISOR) if self.quick else full, self.train_size)

    def load_data(self, root=None) -> MNIST:
        """:func:`aelib.load_mnist`, sized for a notebook: the whole training split (``epochs`` adapts to its size)
        and at most 100 test digits of each class, chosen at random with a fixed seed."""
        data = load_mnist(root)
        self.train_size = len(data.train_x)
        if len(data.test_x) > 10 * NOTEBOOK_TEST_PER_DIGIT:
            order = torch.randperm(len(data.test_y), generator=torch.Generator().manual_seed(0))
            per_digit = [order[data.test_y[order] == d][:NOTEBOOK_TEST_PER_DIGIT] for d in range(10)]
            keep = torch.cat(per_digit).sort().values
            data = dataclasses.replace(data, test_x=data.test_x[keep], test_y=data.test_y[keep],
                                       source=f"{data.source}; {len(keep):,} of its {len(data.test_y):,} test digits")
        if self.train_size > BUDGET_TRAIN_SIZE:
            print(f"{self.train_size:,} training digits: the epochs below are scaled by {BUDGET_TRAIN_SIZE:,}/"
                  f"{self.train_size:,} so training takes about as long as on the 4,000-digit offline sample "
                  f"(20 epochs -> {self.epochs(20)})")
        return data

    def __str__(self):
        mode = "QUICK mode: short training, rough numbers" if self.quick else "full mode"
        return f"seed {self.seed}, device {self.device}, {mode}"


def setup(seed: int = 0, dpi: int = 80) -> Setup:
    """Seed everything, pick the device, apply aelib's CPU thread policy (:func:`aelib.threads.use_threads`), set a
    readable figure style, and report the mode."""
    import matplotlib.pyplot as plt

    seed_everything(seed)
    plt.rcParams.update({"figure.dpi": dpi, "savefig.dpi": dpi, "font.size": 10, "axes.titlesize": 11})
    result = Setup(seed=seed, device=pick_device(), quick=quick_mode())
    use_threads(device=result.device)
    _compact_figures()
    print(result)
    return result


def _compact_figures() -> None:
    """In a Jupyter kernel, show matplotlib figures as palette PNGs (:func:`aelib.course.plotting.palette_png`): about half
    the bytes, so the stored notebooks stay small. Outside IPython (scripts, tests) nothing changes."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    import matplotlib.pyplot as plt
    from IPython.core.pylabtools import print_figure
    from matplotlib.figure import Figure

    plt.close(plt.figure())   # load the backend now: the inline backend sets its formatters then, and ours must win

    from .plotting import palette_png

    def png(fig):
        raw = print_figure(fig, "png", bbox_inches="tight")
        return None if raw is None else palette_png(raw)

    shell.display_formatter.formatters["image/png"].for_type(Figure, png)
