"""What a notebook may put on the website: its text, maths, tables, links and pictures, never its scripts.

The site treats every notebook as JupyterLab treats an untrusted one. Markdown is rendered, then cleaned by nh3 (the
Python binding of ammonia, a well-kept HTML sanitiser): no ``<script>``, no ``on...=`` handlers, no ``javascript:``
links, no ``<style>`` or ``<iframe>``. Outputs that could run code (JavaScript, SVG) become their plain-text or
picture form; HTML outputs are cleaned the same way. What runs on a page is only what aelib writes: its
template and the explorers' modules (``aelib/explorers``), booted from their stored state.
"""
from __future__ import annotations

import nh3

MATHML_TAGS = {"math", "mi", "mn", "mo", "ms", "mtext", "mspace", "mrow", "mfrac", "msqrt", "mroot", "mstyle",
               "mpadded", "mphantom", "menclose", "msub", "msup", "msubsup", "munder", "mover", "munderover",
               "mtable", "mtr", "mtd", "semantics", "annotation"}
MATHML_ATTRIBUTES = {"display", "mathvariant", "stretchy", "fence", "separator", "lspace", "rspace", "width",
                     "height", "depth", "columnalign", "columnspacing", "rowspacing", "columnlines", "rowlines",
                     "accent", "accentunder", "movablelimits", "minsize", "maxsize", "notation", "displaystyle",
                     "scriptlevel", "form", "symmetric", "largeop", "linethickness", "frame", "encoding"}
TAGS = nh3.ALLOWED_TAGS | MATHML_TAGS | {"input"}   # input: nbconvert's task-list checkboxes (rendered disabled)
ATTRIBUTES = {**nh3.ALLOWED_ATTRIBUTES, **{tag: MATHML_ATTRIBUTES for tag in MATHML_TAGS},
              "a": {"href", "hreflang", "title"}, "img": {"src", "alt", "width", "height", "title"},
              "td": {"colspan", "rowspan", "style"}, "th": {"colspan", "rowspan", "style"},
              "input": {"type", "checked", "disabled"}, "*": {"id", "class", "title", "lang", "dir"}}
URL_SCHEMES = {"http", "https", "mailto", "data"}   # data: only where it draws a picture (see _attribute)
UNSAFE_OUTPUTS = ("application/javascript", "text/javascript", "image/svg+xml", "text/latex")   # code, or markup
# nothing here cleans; their other forms remain. Widgets: builder.static_widgets boots aelib's own, shows the rest's
# picture or text.
STYLE_PROPERTIES = {"text-align"}   # nbconvert aligns table cells with it


def _attribute(tag: str, name: str, value: str) -> str | None:
    if value.strip().lower().startswith("data:") and not (tag == "img" and name == "src"
                                                          and value.strip().lower().startswith("data:image/")):
        return None   # a data: URL may only be a picture
    if tag == "input" and name == "type" and value != "checkbox":
        return None
    return value


def clean(html: str) -> str:
    """``html`` with everything that could run removed (tags, attributes and URLs outside the lists above)."""
    return nh3.clean(html, tags=TAGS, attributes=ATTRIBUTES, url_schemes=URL_SCHEMES, attribute_filter=_attribute,
                     filter_style_properties=STYLE_PROPERTIES, link_rel="noopener noreferrer")


def clean_notebook(nb) -> None:
    """In place: raw cells and outputs as an untrusted notebook shows them. An output keeps its safe forms (a
    picture, plain text, cleaned HTML); one left with none becomes a line saying what was removed."""
    for cell in nb.cells:
        if cell.cell_type == "raw":
            cell.source = clean(cell.source)
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data is None:
                continue
            kinds = sorted(kind for kind in UNSAFE_OUTPUTS if kind in data)
            for kind in kinds:
                del data[kind]
            if "text/html" in data:
                html = data["text/html"]
                data["text/html"] = clean(html if isinstance(html, str) else "".join(html))
            if not data:
                data["text/plain"] = f"[{', '.join(kinds)} output: not shown on the website]"
