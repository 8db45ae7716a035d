"""The one setup call at the top of every notebook: seed, device, figure style and quick mode.

Quick mode (set ``CI`` or ``AELIB_QUICK`` in the environment; the test suite does) trains for a fraction of the
epochs so the whole collection runs in minutes. The numbers a quick run prints are then rougher, not different in kind.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from .train import pick_device, seed_everything

QUICK_DIVISOR = 10   # quick mode trains for 1/10 of the epochs (at least 1)


def quick_mode() -> bool:
    """True when ``CI`` or ``AELIB_QUICK`` is set to anything but "" / "0" / "false"."""
    return any(os.environ.get(var, "").lower() not in ("", "0", "false", "no") for var in ("CI", "AELIB_QUICK"))


@dataclass
class Setup:
    seed: int
    device: torch.device
    quick: bool

    def epochs(self, full: int) -> int:
        """``full`` epochs normally; a tenth of them (at least 1) in quick mode."""
        return max(1, full // QUICK_DIVISOR) if self.quick else full

    def __str__(self):
        mode = "QUICK mode: short training, rough numbers" if self.quick else "full mode"
        return f"seed {self.seed}, device {self.device}, {mode}"


def setup(seed: int = 0, dpi: int = 80) -> Setup:
    """Seed everything, pick the device, set a readable figure style, and report the mode."""
    import matplotlib.pyplot as plt

    seed_everything(seed)
    plt.rcParams.update({"figure.dpi": dpi, "savefig.dpi": dpi, "font.size": 10, "axes.titlesize": 11})
    result = Setup(seed=seed, device=pick_device(), quick=quick_mode())
    print(result)
    return result
