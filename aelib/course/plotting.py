"""matplotlib figures for the notebooks and figures/: image grids, latent maps, manifolds, loss curves.

Every function draws into a new figure (or the ``ax`` you pass) and returns the figure, so a notebook cell shows it
and ``fig.savefig(...)`` stores it. Tensors may live on any device; they are moved to the CPU here.
"""
from __future__ import annotations

import io
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

DIGIT_COLORS = plt.get_cmap("tab10")   # digit d is drawn in colour DIGIT_COLORS(d) everywhere


def _np_images(images) -> np.ndarray:
    images = torch.as_tensor(images).detach().float().cpu()
    return images.reshape(-1, 28, 28).numpy()


def tile(images, ncols: int, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Images (N, 1, 28, 28) arranged row by row into one 2-D array with ``ncols`` columns."""
    imgs = _np_images(images)
    n = len(imgs)
    nrows = max(1, math.ceil(n / ncols))
    out = np.full((nrows * (28 + pad) + pad, ncols * (28 + pad) + pad), pad_value, dtype=np.float32)
    for i, img in enumerate(imgs):
        r, c = divmod(i, ncols)
        out[pad + r * (28 + pad): pad + r * (28 + pad) + 28, pad + c * (28 + pad): pad + c * (28 + pad) + 28] = img
    return out


def image_grid(images, ncols: int = 10, title: str | None = None, ax=None, row_labels=None, scale: float = 0.6):
    """Show images (N, 1, 28, 28) as a grid, dark digits on white paper (like ink)."""
    n = len(images)
    nrows = max(1, math.ceil(n / ncols))
    fig, ax = _figure(ax, (scale * ncols + (0.4 if row_labels is not None else 0), scale * nrows + 0.4))
    ax.imshow(1 - tile(images, ncols, pad_value=0.0), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    if row_labels is not None:
        ax.set_yticks([1 + r * 29 + 14 for r in range(nrows)], [str(label) for label in row_labels])
        ax.tick_params(length=0)
    else:
        ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        ax.set_title(title)
    return fig


def reconstructions(model, x, y=None, n: int = 10, title: str | None = None):
    """Top row: test digits; bottom row: the model's reconstructions of them."""
    x = x[:n]
    y = y[:n] if y is not None else None
    recon = model.reconstruct(x, y).cpu()
    return image_grid(torch.cat([x.cpu(), recon]), ncols=len(x), row_labels=["input", "output"],
                      title=title or f"{model.name.upper()}: digits and their reconstructions")


def latent_scatter(codes, labels=None, ax=None, title: str | None = None, size: float = 4, alpha: float = 0.7,
                   background=None, legend: bool = True):
    """The 2-D codes of digits, coloured by digit; ``background`` (K, 2) points (e.g. prior samples) in grey."""
    codes = torch.as_tensor(codes).detach().cpu().numpy()
    if codes.shape[1] < 2:
        raise ValueError(f"latent_scatter needs at least 2 latent dimensions, got {codes.shape[1]}")
    fig, ax = _figure(ax, (5.2, 4.6))
    if background is not None:
        bg = torch.as_tensor(background).detach().cpu().numpy()
        ax.scatter(bg[:, 0], bg[:, 1], s=2, c="0.8", alpha=0.5, linewidths=0, label="prior samples")
    if labels is None:
        ax.scatter(codes[:, 0], codes[:, 1], s=size, alpha=alpha, linewidths=0)
    else:
        labels = torch.as_tensor(labels).cpu().numpy()
        for digit in range(10):
            pts = codes[labels == digit]
            ax.scatter(pts[:, 0], pts[:, 1], s=size, alpha=alpha, color=DIGIT_COLORS(digit), linewidths=0,
                       label=str(digit))
        if legend:
            ax.legend(markerscale=12 / max(size, 1) ** 0.5, fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5),
                      frameon=False, title="digit")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    return fig


def manifold(model, extent: float | tuple = 3.0, n: int = 15, y=None, ax=None, title: str | None = None):
    """Decode a regular n x n grid of codes over [-extent, extent]^2 (z1 left to right, z2 bottom to top).

    ``extent`` may be (z1_min, z1_max, z2_min, z2_max). For a VAE, a grid in N(0, 1) quantiles covers the prior's
    mass evenly: pass ``extent="quantiles"``.
    """
    if extent == "quantiles":
        from statistics import NormalDist

        q = [NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, n)]
        z1, z2 = np.array(q), np.array(q)
    else:
        lo1, hi1, lo2, hi2 = (-extent, extent, -extent, extent) if np.isscalar(extent) else extent
        z1, z2 = np.linspace(lo1, hi1, n), np.linspace(lo2, hi2, n)
    grid = torch.tensor([[a, b] for b in z2[::-1] for a in z1], dtype=torch.float32)
    if model.latent_dim > 2:
        grid = torch.cat([grid, torch.zeros(len(grid), model.latent_dim - 2)], dim=1)
    labels = None if y is None else torch.full((len(grid),), int(y))
    fig = image_grid(model.decode(grid, labels), ncols=n, ax=ax, scale=0.45,
                     title=title or f"{model.name.upper()}: decoded grid of codes")
    return fig


def interpolation(model, x_a, x_b, steps: int = 10, y_a=None, y_b=None, ax=None, title: str | None = None):
    """Decode the straight line between the codes of two images (a strip of ``steps`` images)."""
    pair = torch.stack([torch.as_tensor(x_a).reshape(1, 28, 28), torch.as_tensor(x_b).reshape(1, 28, 28)])
    labels = None if y_a is None else torch.tensor([int(y_a), int(y_b if y_b is not None else y_a)])
    za, zb = model.encode(pair, labels)
    t = torch.linspace(0, 1, steps, device=za.device).unsqueeze(1)
    z = (1 - t) * za + t * zb
    strip_labels = None if labels is None else labels[0].repeat(steps)
    return image_grid(model.decode(z, strip_labels), ncols=steps, ax=ax,
                      title=title or "interpolation between two codes")


def digit_grid(model, n: int = 10, generator: torch.Generator | None = None, ax=None, title: str | None = None):
    """A 10 x n grid from a conditional model: row d holds n samples of digit d."""
    labels = torch.arange(10).repeat_interleave(n)
    images = model.sample(len(labels), labels, generator=generator)
    return image_grid(images, ncols=n, ax=ax, row_labels=range(10),
                      title=title or f"{model.name.upper()}: every digit on demand")


def style_grid(model, z, ax=None, title: str | None = None):
    """Conditional models: each row keeps one style code z fixed while the label runs 0..9."""
    z = torch.as_tensor(z, dtype=torch.float32)
    codes = z.repeat_interleave(10, dim=0)
    labels = torch.arange(10).repeat(len(z))
    return image_grid(model.decode(codes, labels), ncols=10, ax=ax,
                      title=title or "one style per row, the digit changes along it")


def loss_curves(history, keys=None, ax=None, title: str | None = None, ylabel: str = "nats per image"):
    """Per-epoch losses from :func:`aelib.fit` (one line per key)."""
    keys = keys or list(history[0])
    fig, ax = _figure(ax, (5.5, 3.4))
    epochs = np.arange(1, len(history) + 1)
    for key in keys:
        ax.plot(epochs, [h[key] for h in history], marker="o", ms=3, label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    return fig


def palette_png(png: bytes) -> bytes:
    """``png`` re-encoded with a palette of at most 256 colours (no dithering): our figures (grey digits, a few
    line and scatter colours, anti-aliased text) look the same and take about half the bytes (measured on the
    notebooks' stored figures: 2.25 MB -> 1.12 MB)."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    buffer = io.BytesIO()
    image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def _figure(ax, size):
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=size, layout="constrained")
    return fig, ax


def lines(x, series: dict, ax=None, xlabel: str | None = None, ylabel: str | None = None, title: str | None = None,
          styles: dict | None = None, hlines: dict | None = None, logx: bool = False, legend: bool = True):
    """Several curves over the same x: ``series`` maps a label to its y values (one curve each).

    ``styles`` maps a label to a matplotlib format string (e.g. ``"o"`` for markers only, ``"--"`` for dashes);
    the default is a line with small markers. ``hlines`` maps a label to a constant drawn as a dotted horizontal
    line (a target, an exact value). ``logx`` puts x on a log scale.
    """
    fig, ax = _figure(ax, (5.5, 3.4))
    x = np.asarray(torch.as_tensor(x).detach().cpu())
    styles = styles or {}
    for label, y in series.items():
        y = np.asarray(torch.as_tensor(y).detach().cpu(), dtype=float)
        ax.plot(x, y, styles.get(label, "-o"), ms=4, label=label)
    for i, (label, value) in enumerate((hlines or {}).items()):
        ax.axhline(float(value), color="k" if i == 0 else f"C{7 + i}", ls=":", lw=1.5, label=label)
    if logx:
        ax.set_xscale("log")
    elif len(x) and np.all(np.mod(x, 1) == 0):
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))      # epochs, counts: no 2.5 ticks
    ax.set_xlabel(xlabel or "")
    ax.set_ylabel(ylabel or "")
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    return fig


def histograms(samples: dict, bins: int = 60, ax=None, xlabel: str | None = None, title: str | None = None,
               vlines: dict | None = None, value_range: tuple | None = None):
    """Overlaid density histograms of several samples over shared bins: ``samples`` maps a label to its values.

    ``vlines`` maps a label to a value drawn as a vertical line (e.g. the true value that estimates scatter around).
    ``value_range`` (low, high) fixes the bins' span; the default covers the 0.5%..99.5% quantiles of all samples.
    """
    fig, ax = _figure(ax, (5.5, 3.4))
    arrays = {k: np.asarray(torch.as_tensor(v).detach().cpu(), dtype=float).ravel() for k, v in samples.items()}
    if value_range is None:
        both = np.concatenate(list(arrays.values()))
        value_range = tuple(np.quantile(both, [0.005, 0.995]))
    edges = np.linspace(*value_range, bins + 1)
    for label, values in arrays.items():
        ax.hist(values, bins=edges, density=True, histtype="stepfilled", alpha=0.45, label=label)
    for i, (label, value) in enumerate((vlines or {}).items()):
        ax.axvline(float(value), color="k" if i == 0 else f"C{7 + i}", ls="--", lw=1.5, label=label)
    ax.set_xlabel(xlabel or "")
    ax.set_ylabel("density")
    ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    return fig


def compare_models(models: dict, x, y=None, n_recon: int = 10, n_samples: int = 30, seed: int = 0,
                   prior_background: bool = True):
    """One row per model (``models`` maps a name to a trained model): its latent map, samples, reconstructions.

    Column 1: the codes of the images x (first two dimensions), coloured by digit when labels y are given, all
    rows on the SAME axes limits so the spreads compare, over grey samples of the model's prior. Column 2:
    ``n_samples`` new images (the same prior codes for every model, from ``seed``; conditional models get the
    digits 0..9 in turn). Column 3: ``n_recon`` images spread evenly through x, and their reconstructions.
    """
    names = list(models)
    fig, axes = plt.subplots(len(names), 3, figsize=(14, 3.5 * len(names)), layout="constrained", squeeze=False,
                             gridspec_kw={"width_ratios": [1.0, 1.1, 1.1]})
    codes = {name: models[name].encode(x, y if models[name].uses_labels else None).cpu() for name in names}
    limit = max(float(np.quantile(c[:, :2].abs().numpy(), 0.995)) for c in codes.values()) * 1.1
    limit = max(limit, 3.0) if prior_background else limit
    pick = torch.linspace(0, len(x) - 1, min(n_recon, len(x))).long()
    for i, (row, name) in enumerate(zip(axes, names)):
        model = models[name]
        background = model.prior_sample(1000, None, torch.Generator().manual_seed(seed)) if (
            prior_background and not getattr(model.config, "label_guided", False)) else None
        latent_scatter(codes[name], y, ax=row[0], title=f"{name}: codes of the digits", background=background,
                       legend=i == 0)
        row[0].set_xlim(-limit, limit)
        row[0].set_ylim(-limit, limit)
        row[0].set_aspect("equal", adjustable="box")
        labels = torch.arange(n_samples) % 10 if model.uses_labels else None
        images = model.sample(n_samples, labels, generator=torch.Generator().manual_seed(seed))
        image_grid(images, ncols=10, ax=row[1], title=f"{name}: samples from the prior")
        xr = x[pick]
        yr = y[pick] if (y is not None and model.uses_labels) else None
        image_grid(torch.cat([xr.cpu(), model.reconstruct(xr, yr).cpu()]), ncols=len(xr), ax=row[2],
                   row_labels=["input", "output"], title=f"{name}: reconstructions")
    return fig


def decoded_codes(model, z, codes=None, labels=None, y=None, ncols: int = 10, title: str | None = None,
                  numbers: bool = True):
    """Decode chosen codes ``z`` (N, latent_dim) and show where they lie among the codes of real digits.

    Left (only when ``codes`` is given, e.g. ``model.encode(test_x)``): the latent map of ``codes`` coloured by
    ``labels``, with each chosen code drawn as a black cross. Right: the decoded images. With ``numbers`` the crosses
    and the images carry the same numbers, so you can see which regions of the code space decode to digits and which
    to blurs. Only the first two latent dimensions are drawn. ``y``: labels for a conditional decoder.
    """
    z = torch.as_tensor(z, dtype=torch.float32).detach().cpu()
    images = model.decode(z, y).cpu()
    n = len(z)
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    grid_w, grid_h = 0.6 * ncols, 0.6 * nrows + 0.3
    if codes is None:
        fig, ax_img = plt.subplots(figsize=(grid_w, grid_h), layout="constrained")
    else:
        fig, (ax_map, ax_img) = plt.subplots(1, 2, figsize=(5.4 + grid_w, max(3.6, grid_h)), layout="constrained",
                                             gridspec_kw={"width_ratios": [5.4, grid_w]})
        latent_scatter(codes, labels, ax=ax_map, size=3, alpha=0.5)
        ax_map.scatter(z[:, 0], z[:, 1], marker="x", s=24, c="k", linewidths=1.2, zorder=3)
        if numbers:
            for i, (a, b) in enumerate(z[:, :2].tolist()):
                ax_map.annotate(str(i), (a, b), xytext=(2, 2), textcoords="offset points", fontsize=7, zorder=4)
    image_grid(images, ncols=ncols, ax=ax_img)
    if numbers:
        for i in range(n):
            r, c = divmod(i, ncols)
            ax_img.text(2 + c * 29, 2 + r * 29, str(i), fontsize=7, color="tab:red", ha="left", va="top")
    if title:
        fig.suptitle(title)
    return fig


def style_transfer(model, x, y, ax=None, title: str | None = None):
    """Conditional models: encode each image ``x`` with its own label ``y``, then decode that code with every label.

    One row per image: the image itself, a gap, then its code decoded as the digits 0..9. What stays the same along a
    row (slant, width, stroke) is what the code holds; what changes is what the label holds.
    """
    x = torch.as_tensor(x).detach().reshape(-1, 1, 28, 28)
    y = torch.as_tensor(y).reshape(-1)
    z = model.encode(x, y)
    decoded = model.decode(z.repeat_interleave(10, dim=0), torch.arange(10).repeat(len(z))).cpu()
    rows = torch.cat([x.cpu().float().unsqueeze(1), torch.zeros(len(z), 1, 1, 28, 28),
                      decoded.reshape(len(z), 10, 1, 28, 28)], dim=1)
    fig, ax = _figure(ax, (0.6 * 12, 0.6 * len(z) + 0.7))
    image_grid(rows.reshape(-1, 1, 28, 28), ncols=12, ax=ax,
               title=title or f"{model.name.upper()}: each digit's code, decoded with every label")
    ax.set_xticks([1 + c * 29 + 14 for c in range(12)], ["input", ""] + [str(d) for d in range(10)])
    ax.tick_params(length=0)
    return fig


def latent_maps(models: dict, x, y=None, n_samples: int = 30, ncols: int = 5, n_recon: int = 5, seed: int = 0,
                n_prior: int = 3000, width: float = 2.6, title: str | None = None):
    """One column per model (``models`` maps a name to a trained model): latent map, samples, reconstructions.

    Row 1: the codes of the images x (first two dimensions), coloured by digit when labels y are given, over grey
    samples of the distribution that the model's ``sample`` decodes (N(0, I) for the AE, which has no prior; for a
    label-guided prior, equally many samples of each digit's component). Each map keeps its own axis limits, so
    read the ticks to compare spreads (:func:`compare_models` puts every map on the same limits instead).
    Row 2: ``n_samples`` new images in ``ncols`` columns, from the same prior codes for every model with the same
    prior (``seed``); conditional and label-guided models are asked for the digits 0, 1, ..., 9 in turn.
    Row 3 (when ``n_recon`` > 0): ``n_recon`` images spread evenly through x, and their reconstructions below.
    """
    names = list(models)
    nrows = 3 if n_recon else 2
    sample_rows = math.ceil(n_samples / ncols)
    heights = [1.0, sample_rows / ncols, 2.4 / ncols][:nrows]
    fig, axes = plt.subplots(nrows, len(names), figsize=(width * len(names) + 0.9, 0.85 * width * sum(heights) + 0.9),
                             layout="constrained", squeeze=False, gridspec_kw={"height_ratios": heights})
    pick = torch.linspace(0, len(x) - 1, min(n_recon, len(x))).long() if n_recon else None
    for col, name in enumerate(names):
        model = models[name]
        labels_for = (lambda n: torch.arange(n) % 10) if model.uses_labels else (lambda n: None)
        guided = model.label_guided
        codes = model.encode(x, y if model.uses_labels else None).cpu()
        background = model.prior_sample(n_prior, torch.arange(n_prior) % 10 if guided else None,
                                        torch.Generator().manual_seed(seed)) if n_prior else None
        latent_scatter(codes, y, ax=axes[0, col], size=2, background=background, legend=False, title=name)
        images = model.sample(n_samples, labels_for(n_samples), generator=torch.Generator().manual_seed(seed))
        image_grid(images, ncols=ncols, ax=axes[1, col])
        if n_recon:
            xr = x[pick]
            yr = y[pick] if (y is not None and model.uses_labels) else None
            image_grid(torch.cat([xr.cpu(), model.reconstruct(xr, yr).cpu()]), ncols=len(xr), ax=axes[2, col],
                       row_labels=["in", "out"] if col == 0 else None)
    axes[1, 0].set_ylabel("samples")
    if n_recon:
        axes[2, 0].set_ylabel("reconstructions")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right upper", markerscale=4, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
