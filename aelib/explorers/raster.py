"""Pictures drawn once in Python: the latent map of test codes (with the affine map from codes to its pixels), a
digit as ink on paper, a strip of digits, and the slider ranges that frame them."""
from __future__ import annotations

import io

import numpy as np

from ..course.plotting import DIGIT_COLORS
from ..errors import AelibError

MAP_SIZE = (420, 320)         # latent map, pixels (width, height)
MAP_AXES = (52, 16, 272, 272)  # axes box inside the map: left, top, width, height (pixels); square on purpose
MAP_DPI = 80
DIGIT_SCALE = 6               # a decoded 28 x 28 digit is shown at 168 x 168 (nearest neighbour: crisp pixels)
STRIP_SCALE = 2               # images in a strip (interpolation, style row) are shown at 56 x 56
RANGE_PERCENTILES = (0.5, 99.5)  # slider ranges: these percentiles of the test codes ...
RANGE_PAD = 0.25              # ... widened by this fraction of their span on each side
MIN_SPAN = 0.5                # a range is never narrower than this (an untrained model has codes close together)
MARKER = (0, 0, 0)            # colour of the marker ring; its inside is white so it shows on any digit colour
HIGHLIGHT = (214, 39, 40)     # frame around the current image in a strip (tab10 red)
PATH_COLOR = (60, 60, 60)     # the interpolation path on the map


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
    :data:`aelib.course.plotting.DIGIT_COLORS`); ``background`` (K, >= 2) points (prior samples) are drawn in light grey
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
                "digit_colors": ["rgb({}, {}, {})".format(*rgb255(DIGIT_COLORS(d))) for d in range(10)]}

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


def rgb255(color) -> tuple[int, int, int]:
    return tuple(int(round(255 * c)) for c in color[:3])
