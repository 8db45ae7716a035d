"""The widgets of aelib that a page can run without Jupyter, by their ``_anywidget_id`` (module.class): the ES
module that draws each one (its source text: anywidget loads one file, so dom.js, decoder.js and explorer.js are
joined) and its styles. A leaf: the widget classes import it, never the reverse."""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
LATENT_ID = "aelib.explorers.latent.Explorer"              # latent, interpolation and style explorers
POSTERIOR_ID = "aelib.explorers.posterior.PosteriorExplorer"
JS_FILES = {LATENT_ID: ("dom.js", "decoder.js", "explorer.js"), POSTERIOR_ID: ("dom.js", "posterior.js")}
CSS_FILES = {LATENT_ID: ("explorer.css",), POSTERIOR_ID: ("explorer.css", "posterior.css")}


def _joined(files) -> str:
    return "\n".join((HERE / name).read_text() for name in files)


BOOTABLE = {name: _joined(files) for name, files in JS_FILES.items()}   # id -> its ES module's source
STYLES = {name: _joined(files) for name, files in CSS_FILES.items()}
FORMER_IDS = {"aelib.widgets.Explorer": LATENT_ID,                       # before the explorers had a package
              "aelib.posterior_widget.PosteriorExplorer": POSTERIOR_ID}


def current_id(name: str | None) -> str | None:
    """The id a stored widget goes by now (a notebook saved before a widget moved keeps booting), or None if it is
    not one of aelib's bootable widgets."""
    name = FORMER_IDS.get(name, name)
    return name if name in BOOTABLE else None


def bootable(entry: dict) -> str | None:
    """The current ``_anywidget_id`` of a stored widget (nbclient's format) if aelib can boot it, else None."""
    return current_id(entry.get("state", {}).get("_anywidget_id"))
