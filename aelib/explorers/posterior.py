r"""The true posterior of a 2-D VAE as a widget: pick a test digit, see p(z|x) beside q(z|x), and the bounds.

    from aelib import explorers
    explorer = explorers.posterior_explorer(model, data)   # one test digit of each class, computed now (~4 s CPU)
    explorer.index = 123          # any other test digit (with a kernel): its grid is computed once, then cached
    explorer.numbers()            # what is on screen: ELBO, IWAE_k, log p(x), its grid error, the gap
    explorer.save_html("posterior.html")

For each digit it shows the image, the true posterior p(z|x) as a heat map over z (:func:`aelib.course.posterior.
true_posterior`; the prior's 1- and 2-sd circles faint for scale, with an overview of where the view lies in the
prior), the encoder's q(z|x) as its 1- and 2-sd ellipses, and the chain ELBO <= IWAE_k <= log p(x) with the gap
log p(x) - ELBO = KL(q(z|x) || p(z|x)), computed as :func:`aelib.course.posterior.bound_chain` does (same seeding, so the
same numbers for the same digit and settings).

Why it works without a kernel: everything a digit needs is computed when the widget is built (a fixed set, one test
digit of each class by default) and sent once, compactly, as JSON: the heat map as a small greyscale PNG
(2n x 2n cells, 255 = the peak density, rows from the top = from the highest z2), the digit as a 28 x 28 PNG, and
a handful of numbers: 1.3-1.6 kB of JSON per digit for notebook 03's model (a posterior fills a small part of
its grid, so the heat map's PNG is ~0.4 kB). Picking among them is pure JavaScript in ``posterior.js``: it
answers at once, in JupyterLab, after the kernel is shut down, on a page written by :meth:`save_html` and on the
course website (``aelib.site`` boots the stored widget state with :func:`aelib.explorers.page.boot_script`). With a kernel,
setting :attr:`index` from Python to another test digit computes that digit once (cached) and adds it to the set.

The grid: :func:`aelib.course.posterior.true_posterior` with n = 32 (a 64 x 64 heat map; log p(x) from 64 cells per axis)
and a 48 x 48 search grid, instead of the module's defaults 64 / 128, to keep a set of ten digits to a few seconds.
The stated accuracy of log p(x) is still |L_2n - L_n|, shown per digit; each digit costs well under a second of
CPU (docs/results.md has the measurements).
IWAE_k for k = 100 and 1,000: showing both makes the point that more samples tighten the bound, and that IWAE_k is
itself a random estimate.
"""
from __future__ import annotations

import base64
import html
import io
import json
import time
from pathlib import Path

import numpy as np
import traitlets

from ..course import posterior
from ..errors import AelibError
from ..files import atomic_write
from .base import PicturedWidget, in_page
from .kinds import BOOTABLE, POSTERIOR_ID, STYLES
from .packing import to_bytes
from .page import PAGE, boot_script
from .raster import png_bytes

ESM = BOOTABLE[POSTERIOR_ID]
GRID_N = 32            # true_posterior's n: log p(x) with 32 and 64 cells per axis; a 64 x 64 heat map
SEARCH = 48            # its search grid, cells per axis
KS = (100, 1000)       # IWAE_k shown
ELBO_SAMPLES = 1000    # draws of z for the ELBO's E_q[log p(x|z)], as bound_chain
PICTURE_DPI = 80
INSET_SPAN = 3.5           # the overview of the prior shows [-3.5, 3.5]^2
HEAT_DARK = (8, 48, 107)   # the heat map runs from white (density 0) to this blue (its peak), as in the browser


def _png64(array: np.ndarray) -> str:
    return base64.b64encode(png_bytes(array)).decode("ascii")


def first_of_each_class(labels, per_class: int = 1) -> list[int]:
    """The indices of the first ``per_class`` test digits of each class 0..9, by class."""
    labels = np.asarray(labels)
    return [int(i) for d in range(10) for i in np.flatnonzero(labels == d)[:per_class]]


class PosteriorExplorer(PicturedWidget):
    """The true posterior p(z|x) and q(z|x) of a test digit, with ELBO <= IWAE_k <= log p(x); see the module.

    Synced control: ``index`` (the test digit shown; setting it to a digit not yet computed computes it, once).
    ``entries`` holds what the browser draws, one dict per computed digit.
    """

    _esm = ESM
    _css = STYLES[POSTERIOR_ID]
    kind = traitlets.Unicode("posterior").tag(sync=True)
    entries = traitlets.List(traitlets.Dict()).tag(sync=True)
    index = traitlets.Int(0).tag(sync=True)
    ks = traitlets.List(traitlets.Int()).tag(sync=True)
    settings = traitlets.Dict().tag(sync=True)   # the grid and sample sizes, for the caption
    n_test = traitlets.Int(0).tag(sync=True)

    def __init__(self, model, data, indices=None, index: int | None = None, ks=KS, n: int = GRID_N,
                 search: int = SEARCH, elbo_samples: int = ELBO_SAMPLES, seed: int = 0, per_class: int = 1):
        posterior.check_vae(model)
        self.model, self.test_x, self.test_y = model, data.test_x, data.test_y
        self.n, self.search, self.elbo_samples, self.seed = n, search, elbo_samples, seed
        self._ks = tuple(int(k) for k in ks)
        if not self._ks or any(k < 1 for k in self._ks):
            raise AelibError(f"ks must be one or more sample sizes >= 1, got {ks!r}")
        self._cache: dict[int, tuple[dict, posterior.Posterior]] = {}
        self.computed: list[int] = []      # digits in the order they were computed (each one once)
        indices = first_of_each_class(self.test_y.cpu().numpy(), per_class) if indices is None else list(indices)
        if not indices:
            raise AelibError("a posterior explorer needs at least one test digit")
        start = time.perf_counter()
        entries = [self._entry(self._checked(i)) for i in indices]
        self.build_seconds = time.perf_counter() - start
        first = indices[0] if index is None else index
        super().__init__(entries=entries, index=self._checked(indices[0]), ks=list(self._ks), n_test=len(self.test_x),
                         settings={"n": n, "cells": 2 * n, "search": search, "elbo_samples": elbo_samples,
                                   "model": model.name.upper()})
        self.index = first

    # --- computing a digit, once -----------------------------------------------------------------------------
    def _checked(self, value) -> int:
        n = len(self.test_x)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < n:
            raise AelibError(f"index must be the index of a test digit, 0..{n - 1}, got {value!r}")
        return int(value)

    def _entry(self, i: int) -> dict:
        """What the browser needs for test digit i (computed on first use, then cached)."""
        if i in self._cache:
            return self._cache[i][0]
        start = time.perf_counter()
        x = self.test_x[i:i + 1]
        post = posterior.true_posterior(self.model, x, n=self.n, search=self.search)
        elbo, iwae = posterior.sampled_bounds(self.model, x, self._ks, self.elbo_samples, self.seed)
        elbo, iwae = float(elbo[0]), {k: float(v[0]) for k, v in iwae.items()}
        density = post.density[0].numpy()
        heat = to_bytes(np.flipud(density) / density.max())          # row 0 = the highest z2, as on screen
        log_px = float(post.log_px[0])
        entry = {
            "index": i, "label": int(self.test_y[i]),
            "digit": _png64(255 - to_bytes(x.reshape(28, 28).cpu().numpy())),
            "heat": _png64(heat), "cells": int(density.shape[0]), "extent": list(post.extent(0)),
            "q_mean": post.q_mean[0].tolist(), "q_sd": post.q_var[0].sqrt().tolist(),
            "p_mean": post.mean[0].tolist(), "p_cov": post.cov[0].tolist(),
            "elbo": elbo, "iwae": {str(k): v for k, v in iwae.items()}, "log_px": log_px,
            "error": float(post.error[0]), "gap": log_px - elbo,
        }
        entry["seconds"] = round(time.perf_counter() - start, 3)
        self._cache[i] = (entry, post)
        self.computed.append(i)
        return entry

    @traitlets.validate("index")
    def _check_index(self, proposal):
        i = self._checked(proposal["value"])
        entry = self._entry(i)
        if all(e["index"] != i for e in self.entries):
            self.entries = [*self.entries, entry]   # sent before the index changes: the browser draws it at once
        return i

    # --- what is on screen ---------------------------------------------------------------------------------
    @property
    def entry(self) -> dict:
        return self._entry(self.index)

    def true_posterior(self) -> posterior.Posterior:
        """:func:`aelib.course.posterior.true_posterior` of the digit shown (its grid; cached)."""
        self._entry(self.index)
        return self._cache[self.index][1]

    def numbers(self) -> dict:
        """The numbers shown, in nats: elbo, iwae {k: value}, log_px, error (log p(x)'s grid accuracy), gap."""
        e = self.entry
        return {"elbo": e["elbo"], "iwae": {int(k): v for k, v in e["iwae"].items()}, "log_px": e["log_px"],
                "error": e["error"], "gap": e["gap"]}

    def heat(self) -> np.ndarray:
        """The heat map sent to the browser: uint8 (2n, 2n), 255 = the peak of p(z|x), row 0 = the highest z2."""
        from PIL import Image

        return np.asarray(Image.open(io.BytesIO(base64.b64decode(self.entry["heat"]))))

    def payload_bytes(self) -> int:
        """Bytes of JSON the browser gets for the digit shown."""
        return len(json.dumps(self.entry, separators=(",", ":")))

    def snapshot(self) -> np.ndarray:
        """A picture of the widget as it stands (RGB): the digit, p(z|x) with q's ellipses, and the numbers."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.colors import LinearSegmentedColormap
        from matplotlib.figure import Figure
        from matplotlib.patches import Circle, Ellipse, Rectangle

        e, post = self.entry, self.true_posterior()
        fig = Figure(figsize=(780 / PICTURE_DPI, 300 / PICTURE_DPI), dpi=PICTURE_DPI)
        canvas = FigureCanvasAgg(fig)
        digit = fig.add_axes((0.015, 0.2, 0.2, 0.52))
        digit.imshow(self.test_x[e["index"]].reshape(28, 28).cpu().numpy(), cmap="Greys", vmin=0, vmax=1)
        digit.set_xticks([])
        digit.set_yticks([])
        digit.set_title(f"test digit #{e['index']} (a {e['label']})", fontsize=10)
        ax = fig.add_axes((0.3, 0.13, 0.3, 0.78))
        left, right, bottom, top = e["extent"]
        heat = LinearSegmentedColormap.from_list("heat", ["white", np.array(HEAT_DARK) / 255])
        ax.imshow(post.density[0].numpy(), origin="lower", extent=e["extent"], cmap=heat, interpolation="bilinear")
        (x0, x1), (y0, y1) = view(e["extent"])
        for r in (1, 2):
            ax.add_patch(Circle((0, 0), r, fill=False, color="0.6", lw=1, ls=":"))
        for sds, style in ((1, "-"), (2, "--")):
            ax.add_patch(Ellipse(e["q_mean"], 2 * sds * e["q_sd"][0], 2 * sds * e["q_sd"][1], fill=False,
                                 color="tab:red", lw=1.5, ls=style))
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_xlabel("$z_1$", labelpad=1)
        ax.set_ylabel("$z_2$", labelpad=1)
        ax.tick_params(labelsize=8)
        ax.set_title("p(z|x) (blue); q(z|x): 1 and 2 sd (red)", fontsize=9)
        inset = ax.inset_axes((0.72, 0.72, 0.27, 0.27))
        for r in (1, 2):
            inset.add_patch(Circle((0, 0), r, fill=False, color="0.6", lw=0.8))
        inset.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="tab:blue", lw=1))
        inset.set_xlim(-INSET_SPAN, INSET_SPAN)
        inset.set_ylim(-INSET_SPAN, INSET_SPAN)
        inset.set_xticks([])
        inset.set_yticks([])
        inset.set_aspect("equal")
        lines = [f"{'ELBO':<20}{e['elbo']:9.2f}"]
        lines += [f"{'IWAE_' + k:<20}{v:9.2f}" for k, v in e["iwae"].items()]
        lines += [f"{'log p(x) (grid)':<20}{e['log_px']:9.2f}", f"{'  grid error':<20}{e['error']:9.0e}",
                  f"{'gap = KL(q||p(z|x))':<20}{e['gap']:9.2f}", "", "nats per image"]
        fig.text(0.66, 0.85, "\n".join(lines), family="monospace", fontsize=10, va="top")
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()

    def describe(self) -> str:
        return (f"{self.model.name.upper()} posterior explorer: {len(self.entries)} test digits (live in JupyterLab, "
                f"or as a page: explorer.save_html(path))")

    # --- one self-contained page ---------------------------------------------------------------------------
    def page_state(self) -> dict:
        """The synced state posterior.js reads, as JSON (what :func:`aelib.explorers.page.page_state_from_stored`
        gives for its stored state)."""
        return {name: getattr(self, name) for name in self.keys if in_page(name)}

    def to_html(self, title: str | None = None) -> str:
        title = title or f"{self.model.name.upper()}: the true posterior of test digits"
        return PAGE.format(title=html.escape(title), css=STYLES[POSTERIOR_ID], heading=html.escape(title),
                           script=boot_script({"explorer": self.page_state()}))

    def save_html(self, path, title: str | None = None) -> Path:
        """Write :meth:`to_html` to ``path`` (atomically): every computed digit, no kernel, no network needed."""
        path = Path(path)
        if path.suffix.lower() not in (".html", ".htm"):
            raise AelibError(f"save_html writes an HTML page: give a path ending in .html, got {str(path)!r}")
        text = self.to_html(title).encode("utf-8")
        return atomic_write(path, lambda f: f.write(text))


def view(extent) -> tuple[tuple[float, float], tuple[float, float]]:
    """The square view around a heat map's extent (left, right, bottom, top): z1 and z2 at the same scale, so q's
    ellipses and the prior's circles keep their shape (posterior.js computes the same)."""
    left, right, bottom, top = extent
    half = max(right - left, top - bottom) / 2
    c1, c2 = (left + right) / 2, (bottom + top) / 2
    return (c1 - half, c1 + half), (c2 - half, c2 + half)


def posterior_explorer(model, data, indices=None, index: int | None = None, ks=KS, n: int = GRID_N,
                       search: int = SEARCH, elbo_samples: int = ELBO_SAMPLES, seed: int = 0,
                       per_class: int = 1) -> PosteriorExplorer:
    """Pick a test digit; see p(z|x) on a grid with q(z|x)'s ellipses, and ELBO <= IWAE_k <= log p(x).

    ``model``: a trained VAE with latent_dim=2; ``data``: an :class:`aelib.MNIST`. The digits computed now, and so
    available without a kernel, are ``indices`` (default: the first ``per_class`` test digits of each class, about
    0.4 s each); ``index`` is the one shown first. With a kernel, ``explorer.index = i`` shows any test digit
    (computed once). ``n``, ``search``: the grid of :func:`aelib.course.posterior.true_posterior`; ``ks``, ``elbo_samples``
    and ``seed``: as :func:`aelib.course.posterior.bound_chain`.
    """
    return PosteriorExplorer(model, data, indices, index, ks, n, search, elbo_samples, seed, per_class)
