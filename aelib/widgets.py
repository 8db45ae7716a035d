"""Live latent-space explorers for JupyterLab: move a slider, see the decoded digit and where its code lies.

    from aelib import widgets
    widgets.latent_explorer(model, data)          # sliders z1, z2 (+ a digit picker for CVAE/CAAE)
    widgets.interpolation_explorer(model, data)   # walk the straight line between the codes of two test digits
    widgets.style_explorer(model, data)           # CVAE/CAAE: keep the style, switch the digit (or the reverse)

Each function returns an ipywidgets container whose controls are attributes (``explorer.z1``, ``explorer.digit``,
``explorer.t``, ...), so code and tests can move them too.

Why it feels instant: nothing is re-plotted when a slider moves. A matplotlib redraw of a latent map costs about
100 ms (more on a busy machine); decoding one digit costs under a millisecond. So the map is drawn ONCE, off-screen,
into an array (:class:`LatentMap`), together with the affine map from codes to pixels, and reduced once to a
256-colour palette. Per slider event we decode one image, stamp a small marker onto a copy of the map's palette
indices with numpy, PNG-encode the images with Pillow (fast compression; 1 byte per map pixel) and hand the bytes to
``ipywidgets.Image``: a few milliseconds in all. ``python benchmarks/widget_latency.py`` measures this path.

The pure pieces (:func:`decode_image`, :meth:`LatentMap.to_pixel`, :meth:`LatentMap.render`, :func:`slider_ranges`)
need no browser and no kernel: the tests call them directly.
"""
from __future__ import annotations

import io

import ipywidgets as widgets
import numpy as np
import torch

from .errors import AelibError
from .plotting import DIGIT_COLORS

MAP_SIZE = (420, 320)         # latent map, pixels (width, height)
MAP_AXES = (52, 16, 272, 272)  # axes box inside the map: left, top, width, height (pixels); square on purpose
MAP_DPI = 80
DIGIT_SCALE = 6               # a decoded 28 x 28 digit is shown at 168 x 168 (nearest neighbour: crisp pixels)
STRIP_SCALE = 2               # images in a strip (interpolation, style row) are shown at 56 x 56
PNG_COMPRESS_LEVEL = 1        # zlib level 1: faster than the default 6, files a little larger
SLIDER_STEPS = 200            # each slider moves in 1/200 of its range
SLIDER_WIDTH = "600px"        # about the width of the digit and the map side by side
RANGE_PERCENTILES = (0.5, 99.5)  # slider ranges: these percentiles of the test codes ...
RANGE_PAD = 0.25              # ... widened by this fraction of their span on each side
MIN_SPAN = 0.5                # a range is never narrower than this (an untrained model has codes close together)
MAX_PRIOR_POINTS = 2000       # adversarial models: prior samples drawn under the test codes
MARKER = (0, 0, 0)            # colour of the marker ring; its inside is white so it shows on any digit colour
HIGHLIGHT = (214, 39, 40)     # frame around the current image in a strip (tab10 red)
PATH_COLOR = (60, 60, 60)     # the interpolation path on the map


# ------------------------------------------------------------------------------------------------ pure parts
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
    p = model.decode(z, y).cpu().reshape(-1, 28, 28)
    return (p * 255 + 0.5).clamp_(0, 255).to(torch.uint8).numpy()


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
    """PNG-encode a uint8 array (H, W) or (H, W, 3) with fast compression."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
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
    """The codes of digits drawn once, off-screen, into an array; then a marker composited wherever you ask.

    ``codes`` (N, >= 2): the first two columns are drawn. ``labels`` colour them by digit (the tab10 colours of
    :data:`aelib.plotting.DIGIT_COLORS`); ``background`` (K, >= 2) points (prior samples) are drawn in light grey
    underneath. ``xlim``/``ylim`` default to :func:`slider_ranges` of the codes.

    >>> m = LatentMap(codes, labels)
    >>> col, row = m.to_pixel([0.0, 0.0])     # where the code (0, 0) lies in m.background (H, W, 3)
    >>> rgb = m.render([0.5, -1.0])           # a copy of the background with the marker at (0.5, -1)
    >>> png = m.png(m.frame([0.5, -1.0]))     # the same as PNG bytes: what the explorers send per slider event

    The fast path works on colour indices: the background is reduced once to a 256-colour palette (median cut; the
    map has few distinct colours, so the mean error is below one grey level), the marker is stamped as palette
    indices, and a 1-byte-per-pixel PNG encodes ~5x faster than an RGB one.
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
        self._make_palette()
        dy, dx, colors = _marker_stamp()
        self._marker = (dy, dx), self.color_index(colors)
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

    def _make_palette(self) -> None:
        from PIL import Image

        extras = [MARKER, (255, 255, 255), PATH_COLOR, HIGHLIGHT] + [_rgb255(DIGIT_COLORS(d)) for d in range(10)]
        quantized = Image.fromarray(self.background).quantize(256 - len(extras), method=Image.Quantize.MEDIANCUT)
        used = np.array(quantized.getpalette(), dtype=np.uint8).reshape(-1, 3)[:256 - len(extras)]
        self.palette = np.concatenate([used, np.array(extras, dtype=np.uint8)])
        self._palette_bytes = self.palette.tobytes()
        self.indexed = np.asarray(quantized, dtype=np.uint8).copy()   # the background as palette indices
        self._extras = {tuple(c): len(used) + i for i, c in enumerate(extras)}

    def color_index(self, colors) -> np.ndarray | int:
        """Palette index of RGB colour(s) ``colors`` (..., 3): exact for the marker/path colours, else the nearest."""
        colors = np.asarray(colors, dtype=np.int64)
        flat = colors.reshape(-1, 3)
        out = np.empty(len(flat), dtype=np.uint8)
        for i, c in enumerate(flat):
            exact = self._extras.get(tuple(int(v) for v in c))
            out[i] = exact if exact is not None else np.argmin(((self.palette.astype(np.int64) - c) ** 2).sum(1))
        return out.reshape(colors.shape[:-1]) if colors.ndim > 1 else int(out[0])

    # --- pure, fast -----------------------------------------------------------------------------------------
    def to_pixel(self, z) -> np.ndarray:
        """(column, row) of code(s) ``z`` (..., >= 2) in :attr:`background`, as floats; the pixel (c, r) covers
        [c, c + 1) x [r, r + 1)."""
        z = np.asarray(z, dtype=np.float64)
        col0, col_scale, row0, row_scale = self._affine
        return np.stack([col0 + (z[..., 0] - self.xlim[0]) * col_scale,
                         row0 + (z[..., 1] - self.ylim[0]) * row_scale], axis=-1)

    def _stamp(self, out, z, offsets, values) -> None:
        col, row = np.floor(self.to_pixel(z)).astype(int)
        dy, dx = offsets
        rows, cols = row + dy, col + dx
        left, top, right, bottom = self.axes_box
        keep = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
        out[rows[keep], cols[keep]] = values[keep] if np.ndim(values) else values

    def frame(self, z=None, base: np.ndarray | None = None) -> np.ndarray:
        """Palette indices (H, W): a copy of ``base`` (default: the background) with the marker at code ``z``."""
        out = (self.indexed if base is None else base).copy()
        if z is not None:
            self._stamp(out, z, *self._marker)
        return out

    def rgb(self, frame: np.ndarray) -> np.ndarray:
        """A frame of palette indices as an RGB array (H, W, 3)."""
        return self.palette[frame]

    def render(self, z=None, base: np.ndarray | None = None) -> np.ndarray:
        """RGB (H, W, 3): the background (or ``base``, palette indices) with the marker at code ``z``."""
        return self.rgb(self.frame(z, base))

    def png(self, frame: np.ndarray) -> bytes:
        """PNG bytes of a frame of palette indices (fast compression)."""
        from PIL import Image

        image = Image.fromarray(frame, mode=None)
        image.putpalette(self._palette_bytes)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        return buffer.getvalue()

    def with_path(self, a, b, end_colors=(MARKER, MARKER)) -> np.ndarray:
        """Palette indices: the background with the straight segment from code ``a`` to code ``b`` drawn on it."""
        out = self.indexed.copy()
        a, b = np.asarray(a, dtype=np.float64)[:2], np.asarray(b, dtype=np.float64)[:2]
        length = float(np.hypot(*(self.to_pixel(b) - self.to_pixel(a))))
        path = self.color_index(PATH_COLOR)
        for t in np.linspace(0, 1, max(2, int(length) + 1)):
            self._stamp(out, (1 - t) * a + t * b, self._dot, path)
        for end, color in zip((a, b), end_colors):
            self._stamp(out, end, self._square, self.color_index(color))
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
    guide = torch.arange(n) % 10 if model.config.label_guided else None
    return model.prior.sample(n, guide, generator).cpu().numpy().astype(np.float64)


def _dims_note(model) -> str:
    d = model.latent_dim
    if d == 2:
        return ""
    rest = "z3" if d == 3 else f"z3..z{d}"
    return (f"This model has latent_dim={d}: the sliders move z1 and z2, {rest} are held at 0, and the map shows "
            f"only the first two coordinates of the test codes.")


# ------------------------------------------------------------------------------------------- widget helpers
def _slider(name: str, limits, value: float, css: str, width: str = SLIDER_WIDTH) -> widgets.FloatSlider:
    lo, hi = limits
    slider = widgets.FloatSlider(value=float(np.clip(value, lo, hi)), min=lo, max=hi, step=(hi - lo) / SLIDER_STEPS,
                                 description=name, continuous_update=True, readout_format=".2f",
                                 layout=widgets.Layout(width=width))
    slider.add_class(css)
    return slider


def _digit_picker(value: int = 0, description: str = "digit y") -> widgets.ToggleButtons:
    picker = widgets.ToggleButtons(options=list(range(10)), value=int(value), description=description,
                                   style={"button_width": "30px"})
    picker.add_class("aelib-digit-picker")
    return picker


def _image(css: str, width: int, height: int) -> widgets.Image:
    image = widgets.Image(format="png", width=width, height=height)
    image.add_class(css)
    return image


def _caption(text: str) -> widgets.HTML:
    return widgets.HTML(f"<span style='font-size: 12px; color: #444'>{text}</span>")


def _note(text: str) -> widgets.HTML:
    note = widgets.HTML(f"<span style='font-size: 12px; color: #8a4b00'>&#9432; {text}</span>" if text else "")
    note.add_class("aelib-note")
    return note


def _map_for(model, data, max_points, title: str):
    """Codes and labels of the test digits, and their LatentMap (with prior samples for adversarial models)."""
    if getattr(model, "latent_dim", 0) < 2:
        raise AelibError(f"the explorers need a model with latent_dim >= 2 (a 2-D map), got latent_dim="
                         f"{getattr(model, 'latent_dim', None)}")
    codes, labels = test_codes(model, data, max_points)
    prior = prior_samples(model)
    covered = codes[:, :2] if prior is None else np.concatenate([codes[:, :2], prior[:, :2]])
    xlim, ylim = slider_ranges(covered)
    return codes, labels, LatentMap(codes, labels, prior, xlim, ylim, title=title.format(n=len(codes)))


class _Explorer(widgets.VBox):
    """A VBox that redraws its images (``update()``) whenever one of its watched controls changes value."""

    _quiet = False   # True while the explorer sets its own controls (one redraw instead of several)

    def _watch(self, *controls):
        for control in controls:
            control.observe(self._changed, names="value")

    def _changed(self, change):
        if not self._quiet:
            self.update()

    def update(self):  # pragma: no cover: each explorer defines it
        raise NotImplementedError

    @property
    def last_map(self) -> np.ndarray:
        """The map as last shown, RGB (H, W, 3)."""
        return self.map.rgb(self.last_frame)


class LatentExplorer(_Explorer):
    """See :func:`latent_explorer`."""

    def __init__(self, model, data, max_points: int | None = None):
        kind = "style codes" if model.conditional else "codes"
        self.codes, self.labels, self.map = _map_for(model, data, max_points,
                                                     f"{model.name.upper()}: {kind} of {{n:,}} test digits")
        self.model = model
        self.z1 = _slider("z1", self.map.xlim, 0.0, "aelib-z1")
        self.z2 = _slider("z2", self.map.ylim, 0.0, "aelib-z2")
        self.digit = _digit_picker(0) if model.conditional else None
        self.image = _image("aelib-digit", 28 * DIGIT_SCALE, 28 * DIGIT_SCALE)
        self.map_image = _image("aelib-map", *MAP_SIZE)
        self.note = _note(_dims_note(model))
        what = "decoder(z, y)" if model.conditional else "decoder(z)"
        controls = [c for c in (self.z1, self.z2, self.digit) if c is not None]
        super().__init__([widgets.HBox([widgets.VBox([_caption(f"the decoded digit, {what}"), self.image]),
                                        self.map_image]), *controls, self.note])
        self.add_class("aelib-latent-explorer")
        self.layout.width = "fit-content"   # as wide as its images, not the whole page
        self.update()
        self._watch(*controls)

    def code(self) -> np.ndarray:
        return np.array([self.z1.value, self.z2.value])

    def update(self):
        z = self.code()
        self.last_digit = decode_image(self.model, z, self.digit.value if self.digit is not None else None)
        self.last_frame = self.map.frame(z)
        self.image.value = png_bytes(ink_on_paper(self.last_digit))
        self.map_image.value = self.map.png(self.last_frame)


class InterpolationExplorer(_Explorer):
    """See :func:`interpolation_explorer`."""

    def __init__(self, model, data, index_a: int | None = None, index_b: int | None = None, steps: int = 9,
                 max_points: int | None = None):
        self.codes, self.labels, self.map = _map_for(model, data, max_points,
                                                     f"{model.name.upper()}: the straight path from A to B")
        self.model, self.steps = model, steps
        n = len(self.codes)
        index_a = self._first(3, 0) if index_a is None else index_a   # default: the first test 3 and 8
        index_b = self._first(8, min(1, n - 1)) if index_b is None else index_b
        self.index_a = widgets.BoundedIntText(value=index_a, min=0, max=n - 1, description="digit A #",
                                              layout=widgets.Layout(width="170px"))
        self.index_b = widgets.BoundedIntText(value=index_b, min=0, max=n - 1, description="digit B #",
                                              layout=widgets.Layout(width="170px"))
        self.index_a.add_class("aelib-index-a")
        self.index_b.add_class("aelib-index-b")
        self.t = widgets.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.01, description="t",
                                     continuous_update=True, readout_format=".2f",
                                     layout=widgets.Layout(width=SLIDER_WIDTH))
        self.t.add_class("aelib-t")
        self.digit = _digit_picker(int(self.labels[index_a]), "decode as") if model.conditional else None
        self.image = _image("aelib-digit", 28 * DIGIT_SCALE, 28 * DIGIT_SCALE)
        self.strip_image = _image("aelib-strip", steps * (28 * STRIP_SCALE + 4) + 4, 28 * STRIP_SCALE + 8)
        self.map_image = _image("aelib-map", *MAP_SIZE)
        self.ends = _caption("")
        self.note = _note(_dims_note(model))
        controls = [c for c in (self.t, self.digit) if c is not None]
        super().__init__([widgets.HBox([self.index_a, self.index_b, self.ends]),
                          widgets.HBox([widgets.VBox([_caption("decoder((1 - t) z_A + t z_B)"), self.image]),
                                        self.map_image]),
                          _caption(f"{steps} steps from A (left) to B (right); the red frame is the one nearest t"),
                          self.strip_image, *controls, self.note])
        self.add_class("aelib-interpolation-explorer")
        self.layout.width = "fit-content"   # as wide as its images, not the whole page
        self.prepare()
        self.update()
        self._watch(*controls)
        self.index_a.observe(self._endpoint_changed, names="value")
        self.index_b.observe(self._endpoint_changed, names="value")

    def _first(self, digit: int, default: int) -> int:
        hits = np.flatnonzero(self.labels == digit)
        return int(hits[0]) if len(hits) else default

    def _endpoint_changed(self, change):
        if self.digit is not None and change["owner"] is self.index_a:
            self._quiet = True   # the decoder's label follows A's label
            try:
                self.digit.value = int(self.labels[self.index_a.value])
            finally:
                self._quiet = False
        self.prepare()
        self.update()

    def _changed(self, change):
        if not self._quiet:
            if change["owner"] is self.digit:
                self.prepare()
            self.update()

    def _label(self):
        return self.digit.value if self.digit is not None else None

    def prepare(self):
        """Once per change of A, B or the label (not per t event): the codes, the strip, the path on the map."""
        a, b = self.index_a.value, self.index_b.value
        self.code_a, self.code_b = self.codes[a], self.codes[b]
        ts = np.linspace(0, 1, self.steps)[:, None]
        self.strip_digits = decode_images(self.model, (1 - ts) * self.code_a + ts * self.code_b, self._label())
        colors = [_rgb255(DIGIT_COLORS(int(self.labels[i]))) for i in (a, b)]
        self.path_map = self.map.with_path(self.code_a, self.code_b, end_colors=colors)
        self.ends.value = (f"<span style='font-size: 12px; color: #444'>A is a {self.labels[a]}, "
                           f"B is a {self.labels[b]} (test digits)</span>")

    def code(self) -> np.ndarray:
        t = self.t.value
        return (1 - t) * self.code_a + t * self.code_b

    def update(self):
        z = self.code()
        self.last_digit = decode_image(self.model, z, self._label())
        self.last_frame = self.map.frame(z, base=self.path_map)
        nearest = int(round(self.t.value * (self.steps - 1)))
        self.image.value = png_bytes(ink_on_paper(self.last_digit))
        self.strip_image.value = png_bytes(strip(self.strip_digits, highlight=nearest))
        self.map_image.value = self.map.png(self.last_frame)


class StyleExplorer(_Explorer):
    """See :func:`style_explorer`."""

    def __init__(self, model, data, max_points: int | None = None):
        if not getattr(model, "conditional", False):
            raise AelibError(f"style_explorer needs a conditional model (cvae or caae): in a {model.name!r} the code "
                             "z holds digit and style together and there is no label to switch. Use "
                             "latent_explorer(model, data) instead.")
        self.codes, self.labels, self.map = _map_for(model, data, max_points,
                                                     f"{model.name.upper()}: style codes of {{n:,}} test digits")
        self.model = model
        self.z1 = _slider("z1", self.map.xlim, self.codes[0, 0], "aelib-z1")
        self.z2 = _slider("z2", self.map.ylim, self.codes[0, 1], "aelib-z2")
        self.digit = _digit_picker(int(self.labels[0]))
        self.style_of = widgets.BoundedIntText(value=0, min=0, max=len(self.codes) - 1,
                                               description="copy the style of test digit #",
                                               style={"description_width": "initial"},
                                               layout=widgets.Layout(width="300px"))
        self.style_of.add_class("aelib-style-of")
        self.image = _image("aelib-digit", 28 * DIGIT_SCALE, 28 * DIGIT_SCALE)
        self.row_image = _image("aelib-row", 10 * (28 * STRIP_SCALE + 4) + 4, 28 * STRIP_SCALE + 8)
        self.map_image = _image("aelib-map", *MAP_SIZE)
        self.note = _note(_dims_note(model))
        super().__init__([widgets.HBox([widgets.VBox([_caption("the decoded digit, decoder(z, y)"), self.image]),
                                        self.map_image]),
                          _caption("the same style z, every digit y = 0..9 (red frame: the current y)"),
                          self.row_image, self.z1, self.z2, self.digit, self.style_of, self.note])
        self.add_class("aelib-style-explorer")
        self.layout.width = "fit-content"   # as wide as its images, not the whole page
        self.update()
        self._watch(self.z1, self.z2, self.digit)
        self.style_of.observe(self._copy_style, names="value")

    def _copy_style(self, change):
        code = self.codes[change["new"]]
        self._quiet = True   # set both sliders, then redraw once
        try:
            self.z1.value, self.z2.value = float(code[0]), float(code[1])
        finally:
            self._quiet = False
        self.update()

    def code(self) -> np.ndarray:
        return np.array([self.z1.value, self.z2.value])

    def update(self):
        z, y = self.code(), self.digit.value
        self.last_row = decode_images(self.model, np.repeat(z[None], 10, axis=0), np.arange(10))
        self.last_digit = self.last_row[y]
        self.last_frame = self.map.frame(z)
        self.image.value = png_bytes(ink_on_paper(self.last_digit))
        self.row_image.value = png_bytes(strip(self.last_row, highlight=y))
        self.map_image.value = self.map.png(self.last_frame)


# ------------------------------------------------------------------------------------------------- explorers
def latent_explorer(model, data, max_points: int | None = None) -> LatentExplorer:
    """Sliders z1, z2 (and, for CVAE/CAAE, a digit picker): the decoded digit beside the latent map of test codes.

    ``data``: an :class:`aelib.MNIST`; its test digits are encoded once and drawn on the map, coloured by digit; for
    the AAE/CAAE, prior samples are drawn in grey underneath (does the aggregate posterior match the prior?). The
    slider ranges cover the test codes. A marker follows the sliders. A model with latent_dim > 2 gets sliders for
    z1, z2 (the other dimensions are held at 0) and a note saying so.

    Controls: ``.z1``, ``.z2``, ``.digit`` (None for unconditional models). Images: ``.image`` (the digit),
    ``.map_image``. The last decoded digit (uint8, 28 x 28, 255 = ink) is ``.last_digit``, the last map (RGB)
    ``.last_map``.
    """
    return LatentExplorer(model, data, max_points)


def interpolation_explorer(model, data, index_a: int | None = None, index_b: int | None = None, steps: int = 9,
                           max_points: int | None = None) -> InterpolationExplorer:
    """Pick two test digits A and B (by index); a slider t in [0, 1] walks the code (1 - t) z_A + t z_B.

    Shows the digit decoded at t, a strip of ``steps`` decodes from A to B (the one nearest t framed in red) and the
    path on the latent map with a marker at t. For CVAE/CAAE a digit picker sets the label the decoder gets along the
    whole path (it follows A's label when A changes).

    Controls: ``.index_a``, ``.index_b``, ``.t``, ``.digit`` (None for unconditional models). ``.code_a`` and
    ``.code_b`` are the two codes; ``.last_digit`` the last decoded digit.
    """
    return InterpolationExplorer(model, data, index_a, index_b, steps, max_points)


def style_explorer(model, data, max_points: int | None = None) -> StyleExplorer:
    """CVAE/CAAE: the code z holds the style, the label y the digit; keep one fixed and change the other.

    Sliders z1, z2 move the style, the digit picker switches the digit, and "copy the style of test digit #" puts a
    test digit's code on the sliders. Shows decoder(z, y) large, the row decoder(z, 0..9) (the current digit framed)
    and the marker on the map of style codes. Raises :class:`AelibError` for a model that is not conditional.

    Controls: ``.z1``, ``.z2``, ``.digit``, ``.style_of``. ``.last_digit`` is the last decoded digit, ``.last_row``
    the last row of ten (10, 28, 28).
    """
    return StyleExplorer(model, data, max_points)
