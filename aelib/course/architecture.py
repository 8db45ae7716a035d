"""Architecture diagrams of the five models, drawn by code (boxes and arrows with matplotlib).

``draw(name)`` returns a figure. Colours: data in grey, networks in blue, codes in orange, the label in
green, the adversarial part in red.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

COLORS = {"data": "#e6e6e6", "net": "#cfe2f3", "code": "#fde3c8", "label": "#d9ead3", "adv": "#f4cccc"}
TITLES = {
    "ae": "AE: reconstruct x through a small code z",
    "vae": "VAE: the encoder outputs a distribution; z is sampled from it",
    "cvae": "CVAE: encoder and decoder also see the digit y",
    "aae": "AAE: a discriminator makes the codes look like samples of p(z)",
    "caae": "CAAE: the digit y goes to encoder, decoder and discriminator",
}


def _box(ax, x, y, text, kind, w=1.5, h=0.8):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05,rounding_size=0.15",
                                fc=COLORS[kind], ec="0.3", lw=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=10)
    return (x, y, w, h)


def _arrow(ax, a, b, text=None, style="-|>", color="0.25", dashed=False):
    (x0, y0, w0, h0), (x1, y1, w1, h1) = a, b
    if abs(x1 - x0) >= abs(y1 - y0):   # mostly horizontal: leave from the side
        start = (x0 + (w0 / 2 if x1 > x0 else -w0 / 2), y0)
        end = (x1 - (w1 / 2 if x1 > x0 else -w1 / 2), y1)
    else:                               # mostly vertical: leave from top/bottom
        start = (x0, y0 + (h0 / 2 if y1 > y0 else -h0 / 2))
        end = (x1, y1 - (h1 / 2 if y1 > y0 else -h1 / 2))
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12, color=color, lw=1.2,
                                 linestyle="--" if dashed else "-", shrinkA=2, shrinkB=2))
    if text:
        mid = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
        horizontal = abs(end[0] - start[0]) >= abs(end[1] - start[1])
        ax.text(mid[0] + (0 if horizontal else 0.12), mid[1] + (0.15 if horizontal else 0), text, fontsize=8,
                ha="center" if horizontal else "left", va="bottom" if horizontal else "center", color="0.3")


def draw(name: str, ax=None):
    """A diagram of model ``name`` (ae, vae, cvae, aae, caae)."""
    from ..errors import AelibError

    if name not in TITLES:
        raise AelibError(f"unknown model {name!r}: choose one of {', '.join(TITLES)}")
    conditional = name.startswith("c")
    variational = "vae" in name
    adversarial = "aae" in name
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 3.6 if (adversarial or conditional) else 2.4), layout="constrained")
    fig = ax.figure
    top = 0.0
    x = _box(ax, 0, top, "image x\n28×28", "data", w=1.2)
    enc = _box(ax, 2, top, "Encoder\nMLP", "net")
    if variational:
        stats = _box(ax, 4, top, "μ(x), log σ²(x)", "code", w=1.7)
        z = _box(ax, 6.1, top, "z = μ + σ·ε", "code", w=1.6)
        eps = _box(ax, 6.1, top + 1.3, "ε ~ N(0, I)", "data", w=1.4, h=0.6)
        _arrow(ax, enc, stats)
        _arrow(ax, stats, z)
        _arrow(ax, eps, z)
        ax.text(4, top - 0.75, "KL(q(z|x) ‖ N(0, I)) in the loss", ha="center", fontsize=8, color="0.3")
        dec_x = 8.1
    else:
        z = _box(ax, 4.2, top, "code z", "code", w=1.2)
        _arrow(ax, enc, z)
        dec_x = 6.3
    dec = _box(ax, dec_x, top, "Decoder\nMLP", "net")
    out = _box(ax, dec_x + 2, top, "logits → p(x|z)\n(Bernoulli)", "data", w=1.7)
    _arrow(ax, x, enc)
    _arrow(ax, z, dec)
    _arrow(ax, dec, out)
    if conditional:
        y = _box(ax, (2 + dec_x) / 2, top + 1.6, "digit y (one-hot)", "label", w=1.8, h=0.6)
        _arrow(ax, y, enc)
        _arrow(ax, y, dec)
    if adversarial:
        prior = _box(ax, 1.6, top - 1.8, "samples of p(z)\n(any prior)", "data", w=1.9)
        disc = _box(ax, 4.2, top - 1.8, "Discriminator\n→ one logit", "adv", w=1.8)
        _arrow(ax, prior, disc, "real")
        _arrow(ax, z, disc, "fake")
        ax.text(6.6, top - 1.8, "prior sample or code?\nthe encoder learns to fool it", ha="left", va="center",
                fontsize=8, color="0.3")
        if conditional:   # the CAAE's discriminator judges (code, digit) pairs
            _arrow(ax, _box(ax, 4.2, top - 3.1, "digit y", "label", w=1.2, h=0.5), disc)
    ax.set_xlim(-0.8, dec_x + 3.1)
    bottom = (3.5 if conditional else 2.5) if adversarial else 1.1
    ax.set_ylim(top - bottom, top + 2.1 if (conditional or variational) else top + 0.7)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(TITLES[name], fontsize=11)
    return fig
