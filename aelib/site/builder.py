r"""The course website: every notebook as a static page, its explorers alive, nothing fetched from another host.

    python -m aelib site [--out site/]       # or: aelib.site.build("site")
    python -m http.server -d site 8000       # any static file server; or open site/index.html from disk

It builds in seconds from the committed, executed notebooks (nothing is executed): ``index.html`` (what the
collection is and how to run it, from 00_index and README's install command), one page per notebook
(``03_vae.html``, ...) with its prose, maths, code, stored outputs and figures, previous/next links and a download
link to its ``.ipynb`` (copied into ``notebooks/``), and ``static/site.css``.

How, and why these tools:

* **nbconvert with a small template** (``aelib/site/templates/aelib_site``, extending nbconvert's ``lab`` template): a
  page looks like the notebook in JupyterLab, and nbconvert comes with JupyterLab anyway. The template drops the
  four things nbconvert would fetch from a CDN (require.js, MathJax, mermaid and the widget manager) and links one
  shared stylesheet instead of inlining 250 kB of CSS into each page. Sphinx + myst-nb would do the same with more
  moving parts and a slower build.
* **Maths: TeX becomes MathML at build time** (``latex2mathml``, pure Python), which Chromium, Firefox and Safari
  render natively: no maths script, no web font, nothing to wait for after the page has loaded. It converts every
  formula in these notebooks ($...$, $$...$$, aligned, \mathbb, \mathcal, \underbrace, \big, \operatorname,
  \boxed); :func:`tex_to_mathml` rewrites three TeX spellings it gets wrong and mends three details of its MathML,
  and static/site.css aligns table cells and draws boxes, which MathML Core leaves out. A formula it cannot convert
  stops the build with its TeX. (KaTeX or MathJax shipped into the site would render the same TeX, but need Node at
  build time, or a script and its fonts on every page.)
* **Explorers run the same explorer.js as in JupyterLab**: their stored widget state
  (:func:`aelib.explorers.page.page_state_from_stored`) is booted by one :func:`aelib.explorers.page.boot_script` per page, so the
  explorers of one model share one copy of its weights; the posterior explorer (aelib.explorers.posterior) runs its
  own module the same way. A reader without JavaScript sees their stored picture.
* **Other widget outputs become static**: a tqdm bar is drawn finished from its stored state (never its "0%" text
  fallback); a bar whose state was not stored becomes one text line; any other widget shows its picture or text.
"""
from __future__ import annotations

import contextlib
import functools
import html
import http.server
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote

import nbformat
from jinja2 import pass_context
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import MarkdownWithMath
from traitlets.config import Config

from ..errors import AelibError
from ..explorers import page as explorer_page
from ..explorers.kinds import POSTERIOR_ID, STYLES, bootable
from ..explorers.stored import WIDGET_STATE
from ..files import why_not_writable
from .mathml import MathMLRenderer
from .sanitize import clean, clean_notebook

NOTEBOOK_DIR = Path("notebooks")   # default folders, relative to where the site is built (a source checkout)
DOCS_DIR = Path("docs")
README = Path("README.md")
TEMPLATES = Path(__file__).with_name("templates")
SITE_NAME = "aelib: the autoencoder family on MNIST"
MARKER = ".aelib-site"     # marks a folder this module built, so a rebuild may replace it
INSTALL = ("python3 -m venv .venv && . .venv/bin/activate && pip install -r requirements.txt && "
           "jupyter lab notebooks/00_index.ipynb")   # used when README.md is not there to read it from
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
SCROLLABLE = re.compile(r'<math display="block"[^>]*>|<table[^>]*>|<pre[^>]*>')
TQDM_TEXT = re.compile(r"^(?P<desc>.*?)\s*:?\s*\d+%\|.*?\|\s*\d+/(?P<total>\d+)")


class SiteExporter(HTMLExporter):
    """nbconvert's HTMLExporter with the site template and MathML maths; cells tagged ``nav`` are left out (the
    site has its own previous/next links)."""

    def __init__(self, **kwargs):
        config = Config({"TagRemovePreprocessor": {"enabled": True, "remove_cell_tags": ["nav"]}})
        super().__init__(config=config, template_name="aelib_site", extra_template_basedirs=[str(TEMPLATES)],
                         **kwargs)

    @pass_context
    def markdown2html(self, context, source):
        renderer = MathMLRenderer(escape=False, attachments=context.get("cell", {}).get("attachments", {}),
                                  anchor_link_text=self.anchor_link_text)
        html = clean(MarkdownWithMath(renderer=renderer).render(source))
        # what may scroll sideways on a phone (a wide formula, a table) can take the keyboard focus to be scrolled
        return SCROLLABLE.sub(lambda m: f'{m[0][:-1]} tabindex="0">', html)


# ------------------------------------------------------------------------------------------- widget outputs
def static_widgets(nb) -> dict[str, dict]:
    """Make every widget output of ``nb`` static or bootable, in place; return {element id: explorer state}.

    An explorer (any of :data:`aelib.explorers.kinds.BOOTABLE`) becomes an empty ``<div id=...>`` for
    :func:`aelib.explorers.page.boot_script` (its stored picture in a
    ``<noscript>``); a tqdm bar becomes the finished bar its stored state holds; anything else keeps its picture or
    text. The stored widget state is removed from ``nb.metadata``, so nbconvert embeds no widget manager for it.
    """
    stored = nb.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    explorers = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW not in data:
                continue
            model_id = data.pop(WIDGET_VIEW)["model_id"]
            entry = stored.get(model_id, {})
            if bootable(entry):   # an explorer, or the posterior explorer: each runs its own ES module
                element = f"aelib-explorer-{html.escape(str(model_id), quote=True)}"
                explorers[element] = explorer_page.page_state_from_stored(entry)
                picture = data.pop("image/png", None)
                fallback = f'<noscript><img alt="the explorer" src="data:image/png;base64,{picture}"></noscript>' \
                    if picture else ""
                data.clear()
                data["text/html"] = f'<div id="{element}" class="aelib-site-explorer"></div>{fallback}'
            elif entry.get("model_name") == "HBoxModel":
                data.clear()
                data["text/html"] = _progress_html(entry, stored)
            elif "image/png" not in data and TQDM_TEXT.match(data.get("text/plain", "")):
                match = TQDM_TEXT.match(data.pop("text/plain"))
                data["text/html"] = (f'<div class="aelib-progress">{html.escape(match["desc"])}: '
                                     f'{int(match["total"]):,} batches</div>')
    return explorers


def _progress_html(box: dict, stored: dict) -> str:
    """A tqdm bar (an HBox of HTML, FloatProgress, HTML) as it stood when the cell finished."""
    parts, danger = [], False
    for child in box["state"].get("children", []):
        state = stored.get(child.removeprefix("IPY_MODEL_"), {}).get("state", {})
        if "max" in state:    # FloatProgress / IntProgress
            danger = state.get("bar_style") == "danger"
            parts.append(f'<progress max="{float(state["max"]):g}" value="{float(state["value"]):g}"></progress>')
        elif state.get("value"):   # HTML: tqdm's description and counters, as HTML text
            text = html.unescape(re.sub(r"<[^>]*>", "", state["value"])).replace("\u2007", " ").strip()
            parts.append(f"<span>{html.escape(text)}</span>")
    return f'<div class="aelib-progress{" aelib-danger" if danger else ""}">{"".join(parts)}</div>'


# ------------------------------------------------------------------------------------------------- the site
@dataclass
class Site:
    """What :func:`build` wrote: the folder, its pages, and how long it took."""
    out: Path
    pages: list[str] = field(default_factory=list)
    explorers: dict[str, int] = field(default_factory=dict)   # page -> number of live explorers
    seconds: float = 0.0

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.out.rglob("*") if p.is_file())

    def __str__(self) -> str:
        return (f"site: {len(self.pages)} pages, {sum(self.explorers.values())} live explorers, "
                f"{self.size / 1e6:.1f} MB in {self.out}/ ({self.seconds:.1f} s); open {self.out / 'index.html'}")


def notebooks(folder: Path = NOTEBOOK_DIR) -> list[Path]:
    return sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))


def title(nb, path=None) -> str:
    """The notebook's first '# ' heading (tools/nbtools.py uses it too)."""
    for line in (nb.cells[0].source.splitlines() if nb.cells else []):
        if line.startswith("# "):
            return line[2:].strip()
    where = f"{path}: " if path else ""
    raise AelibError(f"{where}the first cell of a notebook must start with a '# Title' line (a markdown heading)")


def read_notebook(path: Path):
    """The notebook at ``path``, or an AelibError that names the file and says what is wrong with it."""
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # noqa: BLE001 (nbformat raises JSON, validation and OS errors of many types)
        raise AelibError(f"{path} is not a readable notebook ({type(err).__name__}: {str(err)[:120]}); fix or "
                         "remove it, or build from another folder") from None
    title(nb, path)
    return nb


def check_out(out: Path) -> Path:
    """The site's folder, refused while nothing is written when it cannot be one (the current folder, a parent of
    it, a symbolic link, a folder that cannot be written)."""
    if str(out).strip() in ("", ".", "..") or out.resolve() in (Path.cwd(), *Path.cwd().parents):
        raise AelibError(f"--out {str(out)!r} would replace the folder you are in (or one above it): give a new "
                         "folder such as site/")
    if out.is_symlink():
        raise AelibError(f"--out {out} is a symbolic link; give the folder it points to ({out.resolve()}) or another")
    problem = why_not_writable(out.parent)
    if problem:
        raise AelibError(f"cannot build the site in {out}: {problem}")
    return out


def install_command(readme: Path = README) -> str:
    """README's one-line install command (its first shell block that runs pip install)."""
    if readme.exists():
        for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", readme.read_text(), re.S):
            if "pip install" in block:
                return block.strip()
    return INSTALL


def home_notebook(index_nb):
    """The home page's notebook: 00_index without its sections that run code (those are on the 00 page)."""
    nb = nbformat.from_dict(index_nb)
    cells, section = [], []
    for cell in nb.cells + [nbformat.v4.new_markdown_cell("# end")]:
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("#"):
            if not any(c.cell_type == "code" for c in section):
                cells += section
            section = []
        section.append(cell)
    nb.cells = cells
    return nb


def link_pages(text: str, names: set[str]) -> str:
    """Links to the notebooks and documents the site publishes (``href="03_vae.ipynb"``,
    ``href="../docs/results.md#x"``) point to their pages instead."""
    def page(m):
        return f'href="{m[1]}.html{m[3] or ""}"' if f"{m[1]}.{m[2]}" in names else m[0]

    return re.sub(r'href="(?:\.\./(?:docs|notebooks)/)?([^"/#]+)\.(ipynb|md)(#[^"]*)?"', page, text)


def documents(folder: Path = DOCS_DIR) -> list[Path]:
    """The markdown pages published beside the notebooks (none if the folder does not exist)."""
    return sorted(Path(folder).glob("*.md")) if Path(folder).is_dir() else []


def document_notebook(path: Path):
    """A markdown document as a one-cell notebook, so that it becomes a page like the others."""
    text = path.read_text(encoding="utf-8")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)])
    if not text.lstrip().startswith("# "):
        raise AelibError(f"{path} must start with a '# Title' line to become a page")
    return nb


def build(out="site", notebook_dir=NOTEBOOK_DIR, readme: Path = README, docs_dir=DOCS_DIR) -> Site:
    """Write the site into ``out`` (replacing a site built there before) and return what was written."""
    start = time.perf_counter()
    out = check_out(Path(out))
    paths = notebooks(notebook_dir)
    if not paths:
        raise AelibError(f"no notebooks NN_name.ipynb in {notebook_dir}: give the folder that holds them "
                         "(--notebooks DIR), or build from the repository's top folder")
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / MARKER).exists())):
        raise AelibError(f"{out} exists and was not built by `python -m aelib site`: give another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        site = _write(tmp, paths, install_command(readme), documents(docs_dir))
        tmp.chmod(0o755)   # mkdtemp made it private; a web server may run as another user
        written = sorted(p.name for p in tmp.iterdir())
        (tmp / MARKER).write_text("built by `python -m aelib site`; a rebuild replaces what it wrote:\n"
                                  + "\n".join(written) + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():   # the old site goes only once the new one is complete, with what the user added moved in
        _keep_what_the_user_added(out, tmp)
        old = out.with_name(f".{out.name}.old{os.getpid()}")
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old)
    else:
        tmp.rename(out)
    site.out, site.seconds = out, time.perf_counter() - start
    return site


def _keep_what_the_user_added(old: Path, new: Path) -> None:
    """Move into the new site what the old folder holds that no build wrote there (``.git/``, ``CNAME``, ...): the
    layout for publishing with GitHub Pages survives a rebuild."""
    marker = (old / MARKER).read_text().splitlines()[1:] if (old / MARKER).is_file() else []
    built_before = set(marker) if marker else {p.name for p in old.iterdir()
                                               if p.suffix == ".html" or p.name in ("static", "notebooks")}
    for entry in old.iterdir():
        if entry.name != MARKER and entry.name not in built_before and not (new / entry.name).exists():
            entry.rename(new / entry.name)


def _write(out: Path, paths: list[Path], install: str, docs: list[Path]) -> Site:
    exp = SiteExporter()
    (out / "static").mkdir(parents=True)
    (out / "notebooks").mkdir()
    loader = exp.environment.loader
    css = [loader.get_source(exp.environment, name)[0]
           for name in ("static/index.css", "static/theme-light.css", "site.css")]
    (out / "static" / "site.css").write_text("\n".join([*css, STYLES[POSTERIOR_ID]]))

    nbs = [read_notebook(p) for p in paths] + [document_notebook(p) for p in docs]
    sources = paths + docs
    names = {p.name for p in sources}
    pages = [("index.html", SITE_NAME)] + [(quote(f"{p.stem}.html"), title(nb)) for p, nb in zip(sources, nbs)]
    site = Site(out)
    for i, (page, page_title) in enumerate(pages):
        if i == 0:
            nb, download = home_notebook(nbs[0]), None
        elif sources[i - 1].suffix == ".md":
            nb, download = nbs[i - 1], None
        else:
            nb, download = nbformat.from_dict(nbs[i - 1]), f"notebooks/{quote(paths[i - 1].name)}"
            shutil.copyfile(paths[i - 1], out / "notebooks" / paths[i - 1].name)
        nb.metadata["title"] = page_title
        clean_notebook(nb)   # as JupyterLab shows an untrusted notebook: aelib's own explorers are booted below
        explorers = static_widgets(nb)
        resources = {"site": {
            "name": SITE_NAME, "download": download, "install": install if i == 0 else None,
            "prev": {"href": pages[i - 1][0], "title": pages[i - 1][1]} if i > 0 else None,
            "next": {"href": pages[i + 1][0], "title": pages[i + 1][1]} if i + 1 < len(pages) else None,
            "boot": explorer_page.boot_script(explorers) if explorers else "",
        }}
        body, _ = exp.from_notebook_node(nb, resources=resources)
        (out / unquote(page)).write_text(link_pages(body, names), encoding="utf-8")
        site.pages.append(page)
        site.explorers[page] = len(explorers)
    return site


# ---------------------------------------------------------------------------------------------- serving it
@contextlib.contextmanager
def serve(folder):
    """``with serve("site") as url:`` the folder over HTTP on 127.0.0.1 (a free port, a thread), for tests/previews."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
