"""What every aelib widget shares: a picture and a line of text for viewers without widgets, and which of its
synced traits a page outside Jupyter needs."""
from __future__ import annotations

import base64

import anywidget
import traitlets

from .raster import png_bytes


def range_trait():
    return traitlets.Tuple(traitlets.Float(), traitlets.Float()).tag(sync=True)


class PicturedWidget(anywidget.AnyWidget):
    """An aelib widget: live where widgets run; for other viewers (GitHub, a notebook opened without its kernel)
    one line of text (``describe()``) and a picture (``snapshot()``) in the same output."""

    def _repr_mimebundle_(self, **kwargs):
        data, metadata = super()._repr_mimebundle_(**kwargs)
        data["text/plain"] = self.describe()
        data["image/png"] = base64.b64encode(png_bytes(self.snapshot())).decode("ascii")
        return data, metadata


def in_page(name: str) -> bool:
    """Whether a page needs the synced trait ``name``: the widget's own traits, and ``_anywidget_id``, which names
    the ES module that draws it (see :data:`BOOTABLE`); not the rest of anywidget's or ipywidgets' own."""
    return name == "_anywidget_id" or (not name.startswith("_") and name not in ("layout", "tabbable", "tooltip"))
