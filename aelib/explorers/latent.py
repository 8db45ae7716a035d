"""The latent, interpolation and style explorers: drag, press a key or click, and the digit changes at once.

    from aelib import explorers
    explorers.latent_explorer(model, data)          # sliders z1, z2, a map to click (+ a digit picker for CVAE/CAAE)
    explorers.interpolation_explorer(model, data)   # walk the straight line between the codes of two test digits
    explorers.style_explorer(model, data)           # CVAE/CAAE: keep the style, switch the digit (or the reverse)
    explorer.save_html("vae_explorer.html")         # one self-contained page: no kernel, no network needed

Why it is instant, and alive without a kernel: the decoder is a small MLP (2 -> 256 -> 512 -> 784 is about 0.54 M
multiply-adds), which a browser evaluates in well under a millisecond. So Python sends the decoder's weights ONCE
(:func:`~aelib.explorers.packing.pack_decoder`), together with the latent map drawn once by matplotlib (:class:`LatentMap`) and the affine map
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
import html
from pathlib import Path

import numpy as np
import torch
import traitlets

from .. import checks
from ..course.plotting import DIGIT_COLORS
from ..errors import AelibError
from ..files import atomic_write
from .base import PicturedWidget, in_page, range_trait
from .kinds import BOOTABLE, LATENT_ID, STYLES
from .packing import decode_image, decode_images, pack_decoder, requantize
from .page import PAGE, boot_script
from .raster import LatentMap, ink_on_paper, png_bytes, rgb255, slider_ranges, strip

ESM = BOOTABLE[LATENT_ID]
SLIDER_STEPS = 200            # each slider moves in 1/200 of its range (an arrow key press: one step)
MAX_PRIOR_POINTS = 2000       # adversarial models: prior samples drawn under the test codes





# --------------------------------------------------------------------------------------- codes of test digits
def test_codes(model, data, max_points: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Codes (N, latent_dim) and labels (N,) of ``data``'s test digits (all of them, or the first ``max_points``)."""
    if not (hasattr(data, "test_x") and hasattr(data, "test_y")):
        raise AelibError(f"data must be an MNIST object such as aelib.load_mnist() (the explorers draw its test "
                         f"digits and their labels), got {checks.got(data)}")
    x, y = data.test_x, data.test_y
    if max_points is not None:
        max_points = checks.positive_int("max_points", max_points)
        x, y = x[:max_points], y[:max_points]
    if y is None or len(x) == 0:
        raise AelibError("the explorers need labelled test digits to draw the map: data has "
                         f"{'no test labels' if y is None else 'no test digits'}")
    x, y = checks.check_images(x), checks.check_labels(y, len(x))
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


class Explorer(PicturedWidget):
    """One latent-space explorer (see :func:`latent_explorer`, :func:`interpolation_explorer`,
    :func:`style_explorer`): the model's decoder runs in the browser, in ``explorer.js``.

    Synced controls (read them, or set them to move the explorer on screen): ``z1``, ``z2`` (the code; latent and
    style explorers), ``digit`` (the label for conditional models), ``t``, ``index_a``, ``index_b`` (interpolation).
    """

    _esm = ESM
    _css = STYLES[LATENT_ID]
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
    z1_range = range_trait()
    z2_range = range_trait()
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
        steps = checks.whole("steps", steps, low=2)
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
        if isinstance(value, bool) or not 0 <= value < max(n, 1):
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
            colors = [rgb255(DIGIT_COLORS(int(self.labels[i]))) for i in (self.index_a, self.index_b)]
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
            if not in_page(name):
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
        return PAGE.format(title=html.escape(title), css=STYLES[LATENT_ID], heading=html.escape(title),
                           script=boot_script({"explorer": self.page_state(dtype)}))

    def save_html(self, path, dtype: str = "float32", title: str | None = None) -> Path:
        """Write :meth:`to_html` to ``path`` (atomically) and return the path.

        ``dtype="float32"`` decodes exactly as the live explorer (about 2.9 MB for the default decoder);
        ``"int8"`` is about 4x smaller (see :func:`pack_decoder`).
        """
        path = Path(path).expanduser()
        if path.is_dir():
            raise AelibError(f"save_html writes one page, and {path} is a folder: give a file path such as "
                             f"{path / 'explorer.html'}")
        if path.suffix.lower() not in (".html", ".htm"):
            raise AelibError(f"save_html writes an HTML page: give a path ending in .html, got {str(path)!r}")
        text = self.to_html(dtype, title).encode("utf-8")
        return atomic_write(path, lambda f: f.write(text))


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
