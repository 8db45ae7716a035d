"""Latent-space explorers that decode in the browser: drag, press a key or click, and the digit changes at once.

    from aelib import widgets
    widgets.latent_explorer(model, data)          # sliders z1, z2, a map to click (+ a digit picker for CVAE/CAAE)
    widgets.interpolation_explorer(model, data)   # walk the straight line between the codes of two test digits
    widgets.style_explorer(model, data)           # CVAE/CAAE: keep the style, switch the digit (or the reverse)
    widgets.posterior_explorer(model, data)       # 2-D VAE: p(z|x) of test digits beside q(z|x) (posterior_widget)
    explorer.save_html("vae_explorer.html")       # one self-contained page: no kernel, no network needed

Why it is instant, and alive without a kernel: the decoder is a small MLP (2 -> 256 -> 512 -> 784 is about 0.54 M
multiply-adds), which a browser evaluates in well under a millisecond (0.2-0.5 ms measured in Chromium on a 2-core CPU). So Python sends the decoder's weights ONCE (see
:func:`pack_decoder`), together with the latent map drawn once by matplotlib (:class:`LatentMap`) and the affine map
from codes to its pixels; from then on the ES module ``explorer.js`` (an anywidget) decodes and repaints its
canvases in the browser on every event, with no kernel round trip. It keeps working while the kernel trains another
cell, after the kernel is shut down, and on a static page.

Python keeps the model and the API. Every control is a synced attribute: ``explorer.z1``, ``explorer.z2``,
``explorer.digit``, ``explorer.t``, ``explorer.index_a``, ``explorer.index_b``; reading one gives the position the
student left it at, setting one moves the explorer on screen. :meth:`Explorer.decoded` decodes the current position
with torch, and a notebook viewer without widget support (GitHub, say) shows :meth:`Explorer.snapshot`, a picture of
the explorer, instead of a text repr.

The pure pieces (:func:`pack_decoder`, :func:`decode_packed`, :func:`decode_image`, :meth:`LatentMap.to_pixel`,
:func:`slider_ranges`) need no browser: the unit tests call them; tests/test_browser.py checks the JavaScript.
"""
from __future__ import annotations

import base64
import hashlib
import html
import io
import json
from pathlib import Path

import anywidget
import numpy as np
import torch
import traitlets

from .errors import AelibError
from .files import atomic_write
from .plotting import DIGIT_COLORS

ESM = Path(__file__).with_name("explorer.js")
MAP_SIZE = (420, 320)         # latent map, pixels (width, height)
MAP_AXES = (52, 16, 272, 272)  # axes box inside the map: left, top, width, height (pixels); square on purpose
MAP_DPI = 80
DIGIT_SCALE = 6               # a decoded 28 x 28 digit is shown at 168 x 168 (nearest neighbour: crisp pixels)
STRIP_SCALE = 2               # images in a strip (interpolation, style row) are shown at 56 x 56
SLIDER_STEPS = 200            # each slider moves in 1/200 of its range (an arrow key press: one step)
RANGE_PERCENTILES = (0.5, 99.5)  # slider ranges: these percentiles of the test codes ...
RANGE_PAD = 0.25              # ... widened by this fraction of their span on each side
MIN_SPAN = 0.5                # a range is never narrower than this (an untrained model has codes close together)
MAX_PRIOR_POINTS = 2000       # adversarial models: prior samples drawn under the test codes
MARKER = (0, 0, 0)            # colour of the marker ring; its inside is white so it shows on any digit colour
HIGHLIGHT = (214, 39, 40)     # frame around the current image in a strip (tab10 red)
PATH_COLOR = (60, 60, 60)     # the interpolation path on the map
WEIGHT_DTYPES = ("float32", "int8")   # how decoder weights travel: exact, or 4x smaller (stored notebooks)


# ------------------------------------------------------------------------------------------------ decoding
def decode_image(model, z, y=None) -> np.ndarray:
    """Decode one code into a uint8 image (28, 28): 0 = blank paper, 255 = full ink (pixel probability 1).

    ``z`` may be shorter than ``model.latent_dim``: the missing dimensions are 0. ``y`` is the digit for conditional
    models. Runs in eval mode without gradients (``model.decode`` sees to that).
    """
    return decode_images(model, np.asarray(z, dtype=np.float32).reshape(1, -1), y)[0]


def decode_images(model, codes, y=None) -> np.ndarray:
    """Decode a batch of codes (N, k <= latent_dim) into uint8 images (N, 28, 28); ``y``: one digit or N digits."""
    codes = np.asarray(codes, dtype=np.float32)
    if codes.ndim != 2 or codes.shape[1] > model.latent_dim:
        raise AelibError(f"codes must have shape (N, k) with k <= latent_dim={model.latent_dim}, got {codes.shape}")
    z = torch.zeros(len(codes), model.latent_dim)
    z[:, :codes.shape[1]] = torch.from_numpy(codes)
    if model.conditional:
        if y is None:
            raise AelibError(f"{model.name!r} is conditional: pass the digit y (0..9) to decode")
        y = torch.as_tensor(y).long()
    else:
        y = None
    return to_bytes(model.decode(z, y).cpu().reshape(-1, 28, 28).numpy())


def to_bytes(p: np.ndarray) -> np.ndarray:
    """Pixel probabilities as uint8 ink levels, rounded to nearest (explorer.js rounds the same way)."""
    return np.clip(np.floor(np.asarray(p, dtype=np.float64) * 255 + 0.5), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------- the decoder, as bytes
def pack_decoder(model, dtype: str = "float32") -> tuple[dict, bytes]:
    """The decoder's weights as one bytes object and a spec that tells explorer.js how to read them.

    For each Linear layer of ``model.decoder.net`` in order: its weight matrix, row-major (rows = outputs, columns
    = inputs then the ``classes`` label columns), then its bias. ``dtype="float32"`` is exact. ``"int8"`` stores each
    weight row as int8 times one float32 scale per row (max |w| / 127; the int8 block padded to 4 bytes), biases in
    float32: about 4x smaller, for the widget state stored in committed notebooks. The spec's ``key`` names the
    float32 weights, so explorers of the same model on one page share one decoder.
    """
    if dtype not in WEIGHT_DTYPES:
        raise AelibError(f"dtype must be one of {WEIGHT_DTYPES}, got {dtype!r}")
    linears = [m for m in model.decoder.net if isinstance(m, torch.nn.Linear)]
    classes = model.decoder.net.n_classes
    layers, arrays = [], []
    for layer in linears:
        w = layer.weight.detach().cpu().numpy().astype(np.float32)
        b = layer.bias.detach().cpu().numpy().astype(np.float32)
        layers.append({"rows": w.shape[0], "cols": w.shape[1] - classes, "classes": classes})
        arrays.append((w, b))
    exact = b"".join(w.tobytes() + b.tobytes() for w, b in arrays)
    spec = {"latent_dim": model.latent_dim, "classes": classes, "layers": layers, "dtype": "float32",
            "key": hashlib.sha256(exact).hexdigest()[:16]}
    return (spec, exact) if dtype == "float32" else requantize(spec, exact, dtype)


def _layer_arrays(spec: dict, data: bytes) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(weights (rows, cols + classes), bias (rows,))] of a packed decoder, as float32 arrays."""
    if spec.get("dtype") not in WEIGHT_DTYPES:
        raise AelibError(f"unknown weight dtype {spec.get('dtype')!r}; expected one of {WEIGHT_DTYPES}")
    expected = packed_size(spec)
    if expected != len(data):
        raise AelibError(f"the spec describes {expected} bytes of weights, got {len(data)}")
    out, offset = [], 0
    for layer in spec["layers"]:
        rows, stride = layer["rows"], layer["cols"] + layer["classes"]
        n = rows * stride
        if spec["dtype"] == "float32":
            w = np.frombuffer(data, np.float32, n, offset).reshape(rows, stride)
            offset += 4 * n
        elif spec["dtype"] == "int8":
            q = np.frombuffer(data, np.int8, n, offset).reshape(rows, stride)
            offset += 4 * -(-n // 4)
            scale = np.frombuffer(data, np.float32, rows, offset)
            offset += 4 * rows
            w = q.astype(np.float32) * scale[:, None]
        out.append((w, np.frombuffer(data, np.float32, rows, offset)))
        offset += 4 * rows
    return out


def packed_size(spec: dict) -> int:
    """Bytes of weights that ``spec`` describes."""
    total = 0
    for layer in spec["layers"]:
        n = layer["rows"] * (layer["cols"] + layer["classes"])
        total += 4 * n if spec["dtype"] == "float32" else 4 * -(-n // 4) + 4 * layer["rows"]
        total += 4 * layer["rows"]
    return total


def requantize(spec: dict, data: bytes, dtype: str) -> tuple[dict, bytes]:
    """The same decoder packed with another ``dtype`` (from float32; see :func:`pack_decoder`)."""
    if spec["dtype"] != "float32" and dtype != spec["dtype"]:
        raise AelibError(f"can only requantize float32 weights, these are {spec['dtype']}")
    if dtype == spec["dtype"]:
        return spec, data
    if dtype not in WEIGHT_DTYPES:
        raise AelibError(f"dtype must be one of {WEIGHT_DTYPES}, got {dtype!r}")
    parts = []
    for w, b in _layer_arrays(spec, data):
        scale = np.maximum(np.abs(w).max(axis=1), 1e-30).astype(np.float32) / 127
        q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8).tobytes()
        parts += [q, b"\0" * (-len(q) % 4), scale.tobytes(), b.tobytes()]
    return {**spec, "dtype": dtype}, b"".join(parts)


def decode_packed(spec: dict, data: bytes, codes, y=None) -> np.ndarray:
    """Pixel probabilities (N, 784) of codes (N, k <= latent_dim) from packed weights: what explorer.js computes.

    NumPy in float64, the arithmetic of explorer.js (JavaScript numbers are doubles), so the tests can check the
    packing without a browser.
    """
    codes = np.atleast_2d(np.asarray(codes, dtype=np.float64))
    h = np.zeros((len(codes), spec["latent_dim"]))
    h[:, :codes.shape[1]] = codes
    label = None
    if spec["classes"]:
        if y is None:
            raise AelibError("this decoder is conditional: pass the digit y (0..9)")
        label = np.eye(spec["classes"])[np.broadcast_to(np.asarray(y, dtype=np.int64), (len(codes),))]
    layers = _layer_arrays(spec, data)
    for i, (w, b) in enumerate(layers):
        inputs = h if label is None else np.concatenate([h, label], axis=1)
        h = inputs @ w.astype(np.float64).T + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0)
    return 1 / (1 + np.exp(-h))


# ------------------------------------------------------------------------------------------ pictures
def ink_on_paper(image: np.ndarray, scale: int = DIGIT_SCALE) -> np.ndarray:
    """A uint8 digit (H, W), 255 = ink, as a dark-on-white picture enlarged ``scale`` times (nearest neighbour)."""
    return (255 - image).repeat(scale, axis=0).repeat(scale, axis=1)


def strip(images: np.ndarray, scale: int = STRIP_SCALE, highlight: int | None = None, gap: int = 4) -> np.ndarray:
    """Digits (N, 28, 28) side by side as an RGB array, dark on white, ``highlight``-th one framed in red."""
    n = len(images)
    size = 28 * scale
    out = np.full((size + 2 * gap, n * (size + gap) + gap, 3), 255, dtype=np.uint8)
    for i, image in enumerate(images):
        left = gap + i * (size + gap)
        out[gap:gap + size, left:left + size] = ink_on_paper(image, scale)[..., None]
    if highlight is not None:
        frame_box(out, gap + highlight * (size + gap), gap, size, size, HIGHLIGHT, thickness=min(3, gap))
    return out


def frame_box(out: np.ndarray, left: int, top: int, width: int, height: int, color, thickness: int = 3) -> None:
    """Draw a frame ``thickness`` pixels wide just outside the box (left, top, width, height), in place."""
    y0, y1 = max(top - thickness, 0), min(top + height + thickness, out.shape[0])
    x0, x1 = max(left - thickness, 0), min(left + width + thickness, out.shape[1])
    out[y0:top, x0:x1] = color
    out[top + height:y1, x0:x1] = color
    out[y0:y1, x0:left] = color
    out[y0:y1, left + width:x1] = color


def png_bytes(array: np.ndarray) -> bytes:
    """PNG-encode a uint8 array (H, W) or (H, W, 3)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def slider_ranges(codes, percentiles=RANGE_PERCENTILES, pad: float = RANGE_PAD, min_span: float = MIN_SPAN,
                  square: bool = True) -> list[tuple[float, float]]:
    """(low, high) for each column of ``codes`` (N, k): the percentiles, widened by ``pad`` of their span per side.

    Percentiles, not min/max, so that one stray code does not shrink the map for everyone else. With ``square``, two
    ranges whose spans differ by less than 2x get the same span, so the latent map keeps the code space's geometry
    (a circle stays a circle).
    """
    codes = np.asarray(codes, dtype=np.float64)
    lo, hi = np.percentile(codes, percentiles, axis=0)
    span = np.maximum(hi - lo, 1e-12)
    lo, hi = lo - pad * span, hi + pad * span
    center, span = (lo + hi) / 2, np.maximum(hi - lo, min_span)
    if square and len(span) == 2 and span.max() < 2 * span.min():
        span = np.full(2, span.max())
    return [(float(c - s / 2), float(c + s / 2)) for c, s in zip(center, span)]


def _disc_offsets(radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = int(np.ceil(radius))
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    dist = np.hypot(dy, dx)
    keep = dist <= radius
    return dy[keep], dx[keep], dist[keep]


def _marker_stamp(radius: float = 7.5):
    """Pixel offsets and colours of the marker: a black ring, a white ring inside it, a black dot at the centre."""
    dy, dx, dist = _disc_offsets(radius)
    colors = np.empty((len(dy), 3), dtype=np.uint8)
    colors[:] = 255
    colors[dist > radius - 2.2] = MARKER
    colors[dist <= 1.5] = MARKER
    return dy, dx, colors


class LatentMap:
    """The codes of digits drawn once, off-screen, into an RGB array, with the affine map from codes to its pixels.

    ``codes`` (N, >= 2): the first two columns are drawn. ``labels`` colour them by digit (the tab10 colours of
    :data:`aelib.plotting.DIGIT_COLORS`); ``background`` (K, >= 2) points (prior samples) are drawn in light grey
    underneath. ``xlim``/``ylim`` default to :func:`slider_ranges` of the codes.

    >>> m = LatentMap(codes, labels)
    >>> col, row = m.to_pixel([0.0, 0.0])     # where the code (0, 0) lies in m.background (H, W, 3)
    >>> rgb = m.render([0.5, -1.0])           # a copy of the background with the marker at (0.5, -1)

    The explorers send :attr:`background` (as PNG) and :meth:`geometry` to the browser once; explorer.js draws the
    marker there. :meth:`render` draws it in Python, for the explorer's picture (:meth:`Explorer.snapshot`).
    """

    def __init__(self, codes, labels=None, background=None, xlim=None, ylim=None, size=MAP_SIZE, axes=MAP_AXES,
                 title: str | None = None, background_label: str = "prior", point_size: float = 5.0):
        codes = np.asarray(codes, dtype=np.float64)
        if codes.ndim != 2 or codes.shape[1] < 2:
            raise AelibError(f"a latent map needs codes of shape (N, >= 2), got {codes.shape}")
        if xlim is None or ylim is None:
            default_x, default_y = slider_ranges(codes[:, :2])
            xlim, ylim = xlim or default_x, ylim or default_y
        self.xlim, self.ylim = (float(xlim[0]), float(xlim[1])), (float(ylim[0]), float(ylim[1]))
        self.size = size
        self.background = self._draw(codes, labels, background, size, axes, title, background_label, point_size)
        self._marker = _marker_stamp()
        self._dot = _disc_offsets(1.6)[:2]
        self._square = tuple(np.mgrid[-3:4, -3:4].reshape(2, -1))

    def _draw(self, codes, labels, background, size, axes, title, background_label, point_size) -> np.ndarray:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        width, height = size
        left, top, w, h = axes
        fig = Figure(figsize=(width / MAP_DPI, height / MAP_DPI), dpi=MAP_DPI)
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_axes((left / width, 1 - (top + h) / height, w / width, h / height))
        if background is not None:
            bg = np.asarray(background, dtype=np.float64)
            ax.scatter(bg[:, 0], bg[:, 1], s=3, c="0.8", linewidths=0, label=background_label)
        if labels is None:
            ax.scatter(codes[:, 0], codes[:, 1], s=point_size, alpha=0.7, linewidths=0)
        else:
            labels = np.asarray(labels)
            for digit in range(10):
                pts = codes[labels == digit]
                ax.scatter(pts[:, 0], pts[:, 1], s=point_size, alpha=0.7, color=DIGIT_COLORS(digit), linewidths=0,
                           label=str(digit))
        if labels is not None or background is not None:
            ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False, fontsize=8, markerscale=2.5,
                      handletextpad=0.2, borderaxespad=0, title="digit" if labels is not None else None,
                      title_fontsize=8)
        ax.set_xlim(*self.xlim)
        ax.set_ylim(*self.ylim)
        ax.set_xlabel("$z_1$", labelpad=1)
        ax.set_ylabel("$z_2$", labelpad=1)
        ax.tick_params(labelsize=8)
        if title:
            ax.set_title(title, fontsize=9, pad=3)
        canvas.draw()
        rgb = np.asarray(canvas.buffer_rgba())[..., :3].copy()
        # The code -> pixel map is affine: read it off matplotlib's own transform at two corners. Display
        # coordinates start at the bottom left, array rows at the top: row = figure height - y.
        (x0, y0), (x1, y1) = ax.transData.transform([(self.xlim[0], self.ylim[0]), (self.xlim[1], self.ylim[1])])
        fig_height = fig.bbox.height
        self._affine = (x0, (x1 - x0) / (self.xlim[1] - self.xlim[0]), fig_height - y0,
                        -(y1 - y0) / (self.ylim[1] - self.ylim[0]))
        box = ax.get_window_extent()
        self.axes_box = (int(round(box.x0)), int(round(fig_height - box.y1)), int(round(box.x1)),
                         int(round(fig_height - box.y0)))   # left, top, right, bottom in array pixels
        self.transform = (ax.transData, fig_height)        # matplotlib's own mapping, for checking to_pixel
        return rgb

    # --- pure, fast -----------------------------------------------------------------------------------------
    def to_pixel(self, z) -> np.ndarray:
        """(column, row) of code(s) ``z`` (..., >= 2) in :attr:`background`, as floats; the pixel (c, r) covers
        [c, c + 1) x [r, r + 1)."""
        z = np.asarray(z, dtype=np.float64)
        col0, col_scale, row0, row_scale = self._affine
        return np.stack([col0 + (z[..., 0] - self.xlim[0]) * col_scale,
                         row0 + (z[..., 1] - self.ylim[0]) * row_scale], axis=-1)

    def geometry(self) -> dict:
        """What explorer.js needs to place codes on the map (and read codes off a click): plain JSON."""
        return {"width": self.size[0], "height": self.size[1], "affine": [float(v) for v in self._affine],
                "xlim": list(self.xlim), "ylim": list(self.ylim), "axes_box": list(self.axes_box),
                "digit_colors": ["rgb({}, {}, {})".format(*_rgb255(DIGIT_COLORS(d))) for d in range(10)]}

    def _stamp(self, out, z, offsets, values) -> None:
        col, row = np.floor(self.to_pixel(z)).astype(int)
        dy, dx = offsets
        rows, cols = row + dy, col + dx
        left, top, right, bottom = self.axes_box
        keep = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
        out[rows[keep], cols[keep]] = values[keep] if np.ndim(values) > 1 else values

    def render(self, z=None, base: np.ndarray | None = None) -> np.ndarray:
        """RGB (H, W, 3): a copy of the background (or of ``base``) with the marker at code ``z``."""
        out = (self.background if base is None else base).copy()
        if z is not None:
            dy, dx, colors = self._marker
            self._stamp(out, z, (dy, dx), colors)
        return out

    def with_path(self, a, b, end_colors=(MARKER, MARKER)) -> np.ndarray:
        """RGB: the background with the straight segment from code ``a`` to code ``b`` drawn on it."""
        out = self.background.copy()
        a, b = np.asarray(a, dtype=np.float64)[:2], np.asarray(b, dtype=np.float64)[:2]
        length = float(np.hypot(*(self.to_pixel(b) - self.to_pixel(a))))
        for t in np.linspace(0, 1, max(2, int(length) + 1)):
            self._stamp(out, (1 - t) * a + t * b, self._dot, np.array(PATH_COLOR, dtype=np.uint8))
        for end, color in zip((a, b), end_colors):
            self._stamp(out, end, self._square, np.array(color, dtype=np.uint8))
        return out


def _rgb255(color) -> tuple[int, int, int]:
    return tuple(int(round(255 * c)) for c in color[:3])


# --------------------------------------------------------------------------------------- codes of test digits
def test_codes(model, data, max_points: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Codes (N, latent_dim) and labels (N,) of ``data``'s test digits (all of them, or the first ``max_points``)."""
    x, y = data.test_x, data.test_y
    if max_points is not None:
        x, y = x[:max_points], y[:max_points]
    chunks = [model.encode(x[i:i + 2000], y[i:i + 2000] if model.conditional else None).cpu()
              for i in range(0, len(x), 2000)]
    return torch.cat(chunks).numpy().astype(np.float64), y.cpu().numpy()


def prior_samples(model, n: int = MAX_PRIOR_POINTS, seed: int = 0) -> np.ndarray | None:
    """n samples of an adversarial model's prior p(z) (a label-guided prior gets the digits 0..9 in turn)."""
    if not getattr(model, "adversarial", False):
        return None
    generator = torch.Generator().manual_seed(seed)
    guide = torch.arange(n) % 10 if model.label_guided else None
    return model.prior.sample(n, guide, generator).cpu().numpy().astype(np.float64)


def _dims_note(model) -> str:
    d = model.latent_dim
    if d == 2:
        return ""
    rest = "z3" if d == 3 else f"z3..z{d}"
    return (f"This model has latent_dim={d}: the sliders move z1 and z2, {rest} are held at 0, and the map shows "
            f"only the first two coordinates of the test codes.")


# ------------------------------------------------------------------------------------------------- the widget
CSS = """
.aelib-explorer { font: 12px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; background: #fff;
  padding: 6px; width: fit-content; }
.aelib-explorer .aelib-row { display: flex; gap: 12px; align-items: flex-start; flex-wrap: wrap; margin: 2px 0; }
.aelib-explorer .aelib-caption { color: #444; margin: 4px 0; }
.aelib-explorer canvas { display: block; }
.aelib-explorer canvas.aelib-digit { outline: 1px solid #ddd; }
.aelib-explorer canvas.aelib-map { cursor: crosshair; touch-action: none; }
.aelib-explorer .aelib-slider { display: flex; align-items: center; gap: 8px; margin: 2px 0; }
.aelib-explorer .aelib-slider input { width: 480px; }
.aelib-explorer .aelib-name { min-width: 40px; text-align: right; margin-right: 6px; }
.aelib-explorer .aelib-readout { font-variant-numeric: tabular-nums; min-width: 40px; }
.aelib-explorer .aelib-digit-picker { display: flex; align-items: center; margin: 4px 0; }
.aelib-explorer .aelib-digit-picker button { width: 30px; height: 26px; margin: 0 1px; border: 1px solid #bbb;
  background: #f4f4f4; color: #222; border-radius: 3px; cursor: pointer; font: inherit; }
.aelib-explorer .aelib-digit-picker button.aelib-active { background: #1f77b4; border-color: #1f77b4; color: #fff; }
.aelib-explorer .aelib-number { display: flex; align-items: center; margin: 2px 8px 2px 0; }
.aelib-explorer input[type=number] { width: 64px; }
.aelib-explorer .aelib-note { color: #8a4b00; margin-top: 4px; max-width: 620px; }
"""

POSTERIOR_CSS = """
.aelib-posterior-explorer .aelib-digit-picker { flex-wrap: wrap; max-width: 760px; }
.aelib-posterior-explorer .aelib-digit-picker button { width: auto; height: auto; padding: 2px 4px 1px;
  display: inline-flex; flex-direction: column; align-items: center; gap: 1px; }
.aelib-posterior-explorer .aelib-digit-picker button img { width: 28px; height: 28px; image-rendering: pixelated;
  background: #fff; }
.aelib-posterior-explorer .aelib-digit-picker button.aelib-active img { outline: 1px solid #fff; }
.aelib-posterior-explorer img.aelib-digit { width: 140px; height: 140px; image-rendering: pixelated;
  outline: 1px solid #ddd; }
.aelib-posterior-explorer table.aelib-numbers { border-collapse: collapse; font-variant-numeric: tabular-nums; }
.aelib-posterior-explorer table.aelib-numbers td { padding: 1px 6px; }
.aelib-posterior-explorer table.aelib-numbers td:nth-child(2) { text-align: right; }
.aelib-posterior-explorer table.aelib-numbers tr.aelib-gap td { border-top: 1px solid #ccc; font-weight: 600; }
.aelib-posterior-explorer .aelib-key { color: #555; max-width: 260px; margin-top: 6px; }
"""   # the posterior explorer's own rules, on top of CSS (aelib.posterior_widget)


def _range_trait():
    return traitlets.Tuple(traitlets.Float(), traitlets.Float()).tag(sync=True)


class PicturedWidget(anywidget.AnyWidget):
    """An aelib widget: live where widgets run; for other viewers (GitHub, a notebook opened without its kernel)
    one line of text (``describe()``) and a picture (``snapshot()``) in the same output."""

    def _repr_mimebundle_(self, **kwargs):
        data, metadata = super()._repr_mimebundle_(**kwargs)
        data["text/plain"] = self.describe()
        data["image/png"] = base64.b64encode(png_bytes(self.snapshot())).decode("ascii")
        return data, metadata


class Explorer(PicturedWidget):
    """One latent-space explorer (see :func:`latent_explorer`, :func:`interpolation_explorer`,
    :func:`style_explorer`): the model's decoder runs in the browser, in ``explorer.js``.

    Synced controls (read them, or set them to move the explorer on screen): ``z1``, ``z2`` (the code; latent and
    style explorers), ``digit`` (the label for conditional models), ``t``, ``index_a``, ``index_b`` (interpolation).
    """

    _esm = ESM
    _css = CSS
    kind = traitlets.Unicode("latent").tag(sync=True)
    decoder_spec = traitlets.Dict().tag(sync=True)
    decoder_weights = traitlets.Bytes(b"").tag(sync=True)
    map_png = traitlets.Bytes(b"").tag(sync=True)
    map_geometry = traitlets.Dict().tag(sync=True)
    codes = traitlets.Bytes(b"").tag(sync=True)     # interpolation/style: float32 (n, d) codes, then uint8 labels
    n_codes = traitlets.Int(0).tag(sync=True)
    latent_dim = traitlets.Int(2).tag(sync=True)
    conditional = traitlets.Bool(False).tag(sync=True)
    slider_steps = traitlets.Int(SLIDER_STEPS).tag(sync=True)
    steps = traitlets.Int(9).tag(sync=True)
    digit_caption = traitlets.Unicode("").tag(sync=True)
    strip_caption = traitlets.Unicode("").tag(sync=True)
    note = traitlets.Unicode("").tag(sync=True)
    z1_range = _range_trait()
    z2_range = _range_trait()
    z1 = traitlets.Float(0.0).tag(sync=True)
    z2 = traitlets.Float(0.0).tag(sync=True)
    digit = traitlets.Int(0).tag(sync=True)
    t = traitlets.Float(0.0).tag(sync=True)
    index_a = traitlets.Int(0).tag(sync=True)
    index_b = traitlets.Int(0).tag(sync=True)

    def __init__(self, model, data, kind: str = "latent", max_points: int | None = None, steps: int = 9,
                 dtype: str = "float32", **controls):
        if kind not in ("latent", "interpolation", "style"):
            raise AelibError(f"kind must be 'latent', 'interpolation' or 'style', got {kind!r}")
        if kind == "style" and not getattr(model, "conditional", False):
            raise AelibError(f"style_explorer needs a conditional model (cvae or caae): in a {model.name!r} the code "
                             "z holds digit and style together and there is no label to switch. Use "
                             "latent_explorer(model, data) instead.")
        if getattr(model, "latent_dim", 0) < 2:
            raise AelibError(f"the explorers need a model with latent_dim >= 2 (a 2-D map), got latent_dim="
                             f"{getattr(model, 'latent_dim', None)}")
        self.model = model
        self.test_codes, self.labels = test_codes(model, data, max_points)
        prior = prior_samples(model)
        covered = self.test_codes[:, :2] if prior is None else np.concatenate([self.test_codes[:, :2], prior[:, :2]])
        xlim, ylim = slider_ranges(covered)
        what = {"latent": "style codes" if model.conditional else "codes", "style": "style codes"}.get(kind)
        title = (f"{model.name.upper()}: {what} of {len(self.test_codes):,} test digits" if what
                 else f"{model.name.upper()}: the straight path from A to B")
        self.map = LatentMap(self.test_codes, self.labels, prior, xlim, ylim, title=title)
        spec, weights = pack_decoder(model, dtype)
        state = dict(
            kind=kind, decoder_spec=spec, decoder_weights=weights, map_png=png_bytes(self.map.background),
            map_geometry=self.map.geometry(), latent_dim=model.latent_dim, conditional=bool(model.conditional),
            steps=steps, z1_range=xlim, z2_range=ylim, note=_dims_note(model),
            digit_caption=("decoder((1 - t) z_A + t z_B)" if kind == "interpolation" else
                           "the decoded digit, " + ("decoder(z, y)" if model.conditional else "decoder(z)")),
            strip_caption={"interpolation": f"{steps} steps from A (left) to B (right); the red frame is the one "
                                            "nearest t",
                           "style": "the same style z, every digit y = 0..9 (red frame: the current y)"}.get(kind, ""))
        if kind != "latent":
            packed = self.test_codes.astype(np.float32).tobytes() + self.labels.astype(np.uint8).tobytes()
            state.update(codes=packed, n_codes=len(self.test_codes))
        if kind == "interpolation":
            a, b = self._first(3, 0), self._first(8, min(1, len(self.labels) - 1))
            state.update(index_a=a, index_b=b, digit=int(self.labels[a]))
        elif kind == "style":
            state.update(z1=float(np.clip(self.test_codes[0, 0], *xlim)),
                         z2=float(np.clip(self.test_codes[0, 1], *ylim)), digit=int(self.labels[0]))
        super().__init__(**state)
        for name, value in controls.items():   # e.g. index_a=5: validated like any later change
            if value is not None:
                setattr(self, name, value)
        if kind == "interpolation" and controls.get("index_a") is not None:
            self.digit = int(self.labels[self.index_a])   # the decoder's label is A's

    def _first(self, digit: int, default: int) -> int:
        hits = np.flatnonzero(self.labels == digit)
        return int(hits[0]) if len(hits) else default

    # --- every control is checked: a clear error instead of a silently odd explorer ----------------------------
    @traitlets.validate("z1", "z2")
    def _check_code(self, proposal):
        value, name = proposal["value"], proposal["trait"].name
        lo, hi = getattr(self, f"{name}_range")
        if not np.isfinite(value):
            raise AelibError(f"{name} must be a finite number, got {value}")
        return float(np.clip(value, lo, hi))   # as the slider does: the ends of its range

    @traitlets.validate("digit")
    def _check_digit(self, proposal):
        if not 0 <= proposal["value"] <= 9:
            raise AelibError(f"digit must be 0..9, got {proposal['value']}")
        return proposal["value"]

    @traitlets.validate("t")
    def _check_t(self, proposal):
        if not 0.0 <= proposal["value"] <= 1.0:
            raise AelibError(f"t must be in [0, 1] (0 is digit A, 1 is digit B), got {proposal['value']}")
        return proposal["value"]

    @traitlets.validate("index_a", "index_b")
    def _check_index(self, proposal):
        return self._test_digit_index(proposal["trait"].name, proposal["value"])

    def _test_digit_index(self, name: str, value: int) -> int:
        n = len(self.labels) if hasattr(self, "labels") else 0
        if not 0 <= value < max(n, 1):
            raise AelibError(f"{name} must be the index of a test digit, 0..{n - 1}, got {value}")
        return value

    # --- what the explorer shows, computed with torch -------------------------------------------------------
    @property
    def code_a(self) -> np.ndarray:
        return self.test_codes[self.index_a]

    @property
    def code_b(self) -> np.ndarray:
        return self.test_codes[self.index_b]

    def code(self) -> np.ndarray:
        """The code being decoded: (z1, z2), or for the interpolation explorer (1 - t) z_A + t z_B (all dims)."""
        if self.kind == "interpolation":
            return (1 - self.t) * self.code_a + self.t * self.code_b
        return np.array([self.z1, self.z2])

    def _label(self):
        return self.digit if self.model.conditional else None

    def decoded(self) -> np.ndarray:
        """The digit on screen now, decoded by torch: uint8 (28, 28), 255 = ink."""
        return decode_image(self.model, self.code(), self._label())

    def decoded_strip(self) -> np.ndarray | None:
        """The strip under the digit (interpolation: ``steps`` decodes from A to B; style: decoder(z, 0..9))."""
        if self.kind == "interpolation":
            ts = np.linspace(0, 1, self.steps)[:, None]
            return decode_images(self.model, (1 - ts) * self.code_a + ts * self.code_b, self._label())
        if self.kind == "style":
            return decode_images(self.model, np.repeat(self.code()[None], 10, axis=0), np.arange(10))
        return None

    def copy_style(self, index: int) -> None:
        """Put the code of test digit ``index`` on the sliders (what "copy the style of test digit #" does)."""
        code = self.test_codes[self._test_digit_index("index", index)]
        self.z1, self.z2 = float(code[0]), float(code[1])

    def snapshot(self) -> np.ndarray:
        """A picture of the explorer as it stands (RGB): the digit, the map with its marker, the strip if any.

        Notebook viewers without widget support show this instead of the widget (see ``_repr_mimebundle_``).
        """
        digit = np.repeat(ink_on_paper(self.decoded())[..., None], 3, axis=2)
        if self.kind == "interpolation":
            colors = [_rgb255(DIGIT_COLORS(int(self.labels[i]))) for i in (self.index_a, self.index_b)]
            lmap = self.map.render(self.code(), self.map.with_path(self.code_a, self.code_b, colors))
        else:
            lmap = self.map.render(self.code())
        gap = 12
        height = max(digit.shape[0] + 2 * gap, lmap.shape[0])
        top = np.full((height, digit.shape[1] + lmap.shape[1] + 3 * gap, 3), 255, dtype=np.uint8)
        top[gap:gap + digit.shape[0], gap:gap + digit.shape[1]] = digit
        top[:lmap.shape[0], 2 * gap + digit.shape[1]:2 * gap + digit.shape[1] + lmap.shape[1]] = lmap
        row = self.decoded_strip()
        if row is None:
            return top
        nearest = int(round(self.t * (self.steps - 1))) if self.kind == "interpolation" else self.digit
        bottom = strip(row, highlight=nearest)
        width = max(top.shape[1], bottom.shape[1] + gap)
        out = np.full((top.shape[0] + bottom.shape[0], width, 3), 255, dtype=np.uint8)
        out[:top.shape[0], :top.shape[1]] = top
        out[top.shape[0]:, gap:gap + bottom.shape[1]] = bottom
        return out

    def describe(self) -> str:
        """One line for plain-text viewers."""
        name = {"latent": "latent explorer", "interpolation": "interpolation explorer", "style": "style explorer"}
        return (f"{self.model.name.upper()} {name[self.kind]} (live in JupyterLab, or as a page: "
                f"explorer.save_html(path))")

    # --- one self-contained page ---------------------------------------------------------------------------
    def page_state(self, dtype: str = "float32") -> dict:
        """The synced state explorer.js reads, as JSON (bytes as base64), weights packed with ``dtype``."""
        state = {}
        for name in self.keys:
            if not _in_page(name):
                continue
            value = getattr(self, name)
            if name == "decoder_spec":
                spec, weights = requantize(self.decoder_spec, self.decoder_weights, dtype)
                state["decoder_spec"] = spec
                state["decoder_weights"] = {"base64": base64.b64encode(weights).decode("ascii")}
            elif name == "decoder_weights":
                continue
            elif isinstance(value, bytes):
                state[name] = {"base64": base64.b64encode(value).decode("ascii")}
            else:
                state[name] = list(value) if isinstance(value, tuple) else value
        return state

    def to_html(self, dtype: str = "float32", title: str | None = None) -> str:
        """The explorer as one HTML page: its module, styles, weights and map inline; no network, no kernel."""
        title = title or self.describe().split(" (")[0]
        return PAGE.format(title=html.escape(title), css=CSS, heading=html.escape(title),
                           script=boot_script({"explorer": self.page_state(dtype)}))

    def save_html(self, path, dtype: str = "float32", title: str | None = None) -> Path:
        """Write :meth:`to_html` to ``path`` (atomically) and return the path.

        ``dtype="float32"`` decodes exactly as the live explorer (about 2.9 MB for the default decoder);
        ``"int8"`` is about 4x smaller (see :func:`pack_decoder`).
        """
        path = Path(path)
        if path.suffix.lower() not in (".html", ".htm"):
            raise AelibError(f"save_html writes an HTML page: give a path ending in .html, got {str(path)!r}")
        text = self.to_html(dtype, title).encode("utf-8")
        return atomic_write(path, lambda f: f.write(text))


def _in_page(name: str) -> bool:
    """Whether a page needs the synced trait ``name``: the widget's own traits, and ``_anywidget_id``, which names
    the ES module that draws it (see :data:`BOOTABLE`); not the rest of anywidget's or ipywidgets' own."""
    return name == "_anywidget_id" or (not name.startswith("_") and name not in ("layout", "tabbable", "tooltip"))


# The widgets of aelib that a page can run without Jupyter (boot_script) and whose stored state
# compact_widget_state refreshes: their ``_anywidget_id`` (module.class) -> their ES module.
EXPLORER_ID = f"{__name__}.Explorer"
POSTERIOR_ID = "aelib.posterior_widget.PosteriorExplorer"
BOOTABLE = {EXPLORER_ID: ESM, POSTERIOR_ID: ESM.with_name("posterior_explorer.js")}
STYLES = {EXPLORER_ID: CSS, POSTERIOR_ID: CSS + POSTERIOR_CSS}   # each one's _css


def bootable(entry: dict) -> str | None:
    """The ``_anywidget_id`` of a stored widget (nbclient's format) if it is one of :data:`BOOTABLE`, else None."""
    name = entry.get("state", {}).get("_anywidget_id")
    return name if name in BOOTABLE else None


def _script_json(value) -> str:
    """JSON that is safe inside a <script> element."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return json.dumps(text).replace("</", "<\\/")


def boot_script(states: dict[str, dict]) -> str:
    """A ``<script type="module">`` that runs aelib's widgets without Jupyter, for each ``{element id: state}``.

    ``state`` is what :meth:`Explorer.page_state` (or :func:`page_state_from_stored`) gives; its ``_anywidget_id``
    names the ES module that draws it (:data:`BOOTABLE`; explorer.js if it names none). Each module is inlined
    once and imported from a blob URL; a minimal stand-in for the widget model anywidget gives it in Jupyter
    (get/set/on/off; ``save_changes`` is a no-op) feeds it the state. Nothing is fetched; nothing needs a kernel.
    The elements must exist before the script runs (module scripts run after the document is parsed).
    """
    names = sorted({state.get("_anywidget_id", EXPLORER_ID) for state in states.values()})
    unknown = [name for name in names if name not in BOOTABLE]
    if unknown:
        raise AelibError(f"cannot boot widgets of {unknown}: a page runs only {sorted(BOOTABLE)}")
    return BOOT.format(sources=_script_json({name: BOOTABLE[name].read_text() for name in names}),
                       states=_script_json(states), default=json.dumps(EXPLORER_ID))


def page_state_from_stored(entry: dict) -> dict:
    """:meth:`Explorer.page_state` of an explorer from a notebook's stored widget state (nbclient's format)."""
    state = {k: v for k, v in entry["state"].items()
             if _in_page(k)}
    for buffer in entry.get("buffers", []):
        state[buffer["path"][0]] = {"base64": buffer["data"]}
    return state


BOOT = """<script type="module">
// Made by aelib (aelib.widgets.boot_script): the widgets' ES modules and state, with a stand-in for the widget
// model that anywidget gives them in Jupyter. Nothing is fetched; nothing needs a kernel.
const states = JSON.parse({states});
const sources = JSON.parse({sources});   // ES module source by widget class (_anywidget_id)
const modules = {{}};
for (const [name, source] of Object.entries(sources)) {{
  const url = URL.createObjectURL(new Blob([source], {{ type: "text/javascript" }}));
  modules[name] = (await import(url)).default;
  URL.revokeObjectURL(url);
}}
const widgetOf = (id) => modules[states[id]._anywidget_id || {default}];
const models = Object.entries(states).map(([id, state]) => {{
  for (const [key, value] of Object.entries(state)) {{
    if (value && typeof value === "object" && "base64" in value) {{
      const bytes = Uint8Array.from(atob(value.base64), (c) => c.charCodeAt(0));
      state[key] = new DataView(bytes.buffer);
    }}
  }}
  const listeners = new Map();
  const model = {{
    get: (key) => state[key],
    set: (key, value) => {{ state[key] = value; }},
    on: (name, callback) => {{ listeners.set(name, [...(listeners.get(name) || []), callback]); }},
    off: (name, callback) => {{ listeners.set(name, (listeners.get(name) || []).filter((c) => c !== callback)); }},
    save_changes: () => {{}},
    send: () => {{}},
  }};
  return [id, model];
}});
for (const [id, model] of models) widgetOf(id).initialize?.({{ model }});   // every model offers its weights first
await Promise.all(models.map(([id, model]) => widgetOf(id).render({{ model, el: document.getElementById(id) }})));
</script>"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body {{ margin: 16px; font-family: system-ui, sans-serif; }} h1 {{ font-size: 16px; font-weight: 600; }}
{css}</style>
</head>
<body>
<h1>{heading}</h1>
<div id="explorer"></div>
<noscript>This explorer needs JavaScript.</noscript>
{script}
</body>
</html>
"""


# ---------------------------------------------------------------------------------- stored widget state
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def stored_state(widget) -> dict:
    """A widget's entry as Jupyter stores it in a notebook's metadata (JSON state, bytes as base64 buffers): what
    :func:`compact_widget_state` and :func:`page_state_from_stored` read."""
    state, buffers = {}, []
    for name, value in widget.get_state().items():
        if isinstance(value, (bytes, memoryview)):
            buffers.append({"path": [name], "encoding": "base64", "data": base64.b64encode(bytes(value)).decode()})
        else:
            state[name] = value
    return {"model_name": "AnyModel", "model_module": "anywidget", "model_module_version": "*",
            "state": json.loads(json.dumps(state)), "buffers": buffers}


def compact_widget_state(metadata: dict, dtype: str = "int8") -> dict:
    """Shrink the explorers in a notebook's stored widget state (``nb.metadata``), in place; return counts.

    nbclient stores each widget's state with the notebook so that a static rendering with widget support shows live
    explorers. Stored as sent (float32), a decoder costs ~2.9 MB of base64 per explorer. Here the weights are
    re-packed with ``dtype`` (int8: ~0.75 MB; see :func:`pack_decoder` for its accuracy), and only the first
    explorer of each decoder keeps them: the others name the same ``key`` and explorer.js shares the decoder. The
    stored module and styles are replaced by the current ones, so a stored notebook runs the explorer.js it ships with;
    so are those of aelib's other widgets (:data:`BOOTABLE`; counted as explorers), which carry no weights.
    Idempotent.
    """
    state = metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    seen, counts = set(), {"explorers": 0, "shared": 0}
    for entry in state.values():
        name = bootable(entry)
        if name is None:
            continue
        counts["explorers"] += 1
        entry["state"].update(_esm=BOOTABLE[name].read_text(), _css=STYLES[name])
        if name != EXPLORER_ID:
            continue
        spec = entry["state"]["decoder_spec"]
        buffers = [b for b in entry.get("buffers", []) if b.get("path") != ["decoder_weights"]]
        weights = [b for b in entry.get("buffers", []) if b.get("path") == ["decoder_weights"]]
        if weights and spec["key"] not in seen:
            data = base64.b64decode(weights[0]["data"])
            if spec["dtype"] == "float32":
                spec, data = requantize(spec, data, dtype)
            buffers.append({"path": ["decoder_weights"], "encoding": "base64",
                            "data": base64.b64encode(data).decode("ascii")})
            seen.add(spec["key"])
        else:   # shares the copy stored with another explorer (maybe stripped by an earlier call)
            counts["shared"] += 1
            spec = {**spec, "dtype": dtype}
        entry["state"]["decoder_spec"] = spec
        entry["buffers"] = buffers
    return counts


# ------------------------------------------------------------------------------------------------- explorers
def latent_explorer(model, data, max_points: int | None = None, dtype: str = "float32") -> Explorer:
    """Sliders z1, z2 (and, for CVAE/CAAE, a digit picker): the decoded digit beside the latent map of test codes.

    ``data``: an :class:`aelib.MNIST`; its test digits are encoded once and drawn on the map, coloured by digit; for
    the AAE/CAAE, prior samples are drawn in grey underneath (does the aggregate posterior match the prior?). The
    slider ranges cover the test codes. Click or drag on the map to move the code there (the sliders follow); the
    arrow keys move a focused slider. A model with latent_dim > 2 gets sliders for z1, z2 (the other dimensions are
    held at 0) and a note saying so.

    Controls: ``.z1``, ``.z2``, ``.digit`` (ignored by unconditional models); ranges ``.z1_range``, ``.z2_range``.
    """
    return Explorer(model, data, "latent", max_points, dtype=dtype)


def interpolation_explorer(model, data, index_a: int | None = None, index_b: int | None = None, steps: int = 9,
                           max_points: int | None = None, dtype: str = "float32") -> Explorer:
    """Pick two test digits A and B (by index); a slider t in [0, 1] walks the code (1 - t) z_A + t z_B.

    Shows the digit decoded at t, a strip of ``steps`` decodes from A to B (the one nearest t framed in red) and the
    path on the latent map with a marker at t (click or drag near the path to move along it). For CVAE/CAAE a digit
    picker sets the label the decoder gets along the whole path (it follows A's label when you pick another A).

    Controls: ``.index_a``, ``.index_b``, ``.t``, ``.digit``. ``.code_a`` and ``.code_b`` are the two codes.
    """
    return Explorer(model, data, "interpolation", max_points, steps, dtype, index_a=index_a, index_b=index_b)


def style_explorer(model, data, max_points: int | None = None, dtype: str = "float32") -> Explorer:
    """CVAE/CAAE: the code z holds the style, the label y the digit; keep one fixed and change the other.

    Sliders z1, z2 (or a click on the map) move the style, the digit picker switches the digit, and "copy the style
    of test digit #" puts a test digit's code on the sliders (:meth:`Explorer.copy_style` from Python). Shows
    decoder(z, y) large, the row decoder(z, 0..9) (the current digit framed) and the marker on the map of style
    codes. Raises :class:`AelibError` for a model that is not conditional.

    Controls: ``.z1``, ``.z2``, ``.digit``.
    """
    return Explorer(model, data, "style", max_points, dtype=dtype)


def posterior_explorer(model, data, indices=None, index: int | None = None, **settings):
    """VAE with latent_dim=2: pick a test digit, see its true posterior p(z|x) as a heat map with q(z|x)'s 1- and
    2-sd ellipses on top, and ELBO <= IWAE_k <= log p(x) with the gap KL(q || p(z|x)).

    The digits ``indices`` (default: the first test digit of each class) are computed now, about 0.4 s each, and
    work without a kernel; ``explorer.index = i`` (with a kernel) computes any other test digit once. See
    :mod:`aelib.posterior_widget` for the settings (``ks``, ``n``, ``search``, ``elbo_samples``, ``seed``,
    ``per_class``) and what is sent to the browser.
    """
    from .posterior_widget import posterior_explorer

    return posterior_explorer(model, data, indices, index, **settings)
