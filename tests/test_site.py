"""The course website (`python -m aelib site`), built once into a temporary folder from the stored notebooks.

Without a browser: every notebook has a page, every link and resource of a page is a file of the site, nothing
is loaded from another host, no tqdm "0%" text is left, exercise answers stay folded, the .ipynb are copied, and
TeX becomes MathML.
In headless Chromium (the site served by http.server on 127.0.0.1, every request to another host aborted): each
page loads with no request to another host and no console error, shows no raw TeX outside maths and code, and on
each page with explorers, a key press on each explorer's slider changes its decoded digit.

Needs Chromium (the Debian package: `apt-get install chromium`; never `playwright install`) and the Python packages
playwright + pytest-playwright for the browser test; without them it skips and says why.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from aelib import site
from aelib.errors import AelibError
from aelib.explorers import kinds, stored
from aelib.site import builder as site_build
from aelib.site import mathml
from tools import labserver

ROOT = Path(__file__).resolve().parents[1]

NOTEBOOKS = site.notebooks(ROOT / "notebooks")
DOCS = site_build.documents(ROOT / "docs")
PAGES = ["index.html"] + [f"{p.stem}.html" for p in NOTEBOOKS + DOCS]
KEY_PRESSES = 10
RAW_TEX = re.compile(r"\$\$|\\(frac|mathbb|mathcal|begin|big|text|log|sum|mid)\b|\$[^$\s][^$]*\$")
VISIBLE_TEXT = """() => {
  const body = document.body.cloneNode(true);   // folded answers included: their maths must be rendered too
  body.querySelectorAll("pre, code, math, script, style, noscript").forEach((e) => e.remove());
  return body.textContent;
}"""


def _missing() -> str | None:
    if labserver.CHROMIUM is None:
        return "no Chromium: install the Debian package (apt-get install chromium) or set AELIB_CHROMIUM"
    try:
        import playwright.sync_api  # noqa: F401
        import pytest_playwright  # noqa: F401
    except ImportError:
        return "playwright / pytest-playwright are not installed (pip install playwright pytest-playwright)"
    return None


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> site.Site:
    return site.build(tmp_path_factory.mktemp("site") / "site", notebook_dir=ROOT / "notebooks",
                      readme=ROOT / "README.md", docs_dir=ROOT / "docs")


def stored_explorers(path: Path) -> int:
    """Explorer outputs in a stored notebook (any widget a page boots: latent, ..., posterior explorers)."""
    nb = nbformat.read(path, as_version=4)
    state = nb.metadata.get("widgets", {}).get(stored.WIDGET_STATE, {}).get("state", {})
    ids = [o["data"][site_build.WIDGET_VIEW]["model_id"] for c in nb.cells for o in c.get("outputs", [])
           if site_build.WIDGET_VIEW in o.get("data", {})]
    return sum(kinds.bootable(state.get(i, {})) is not None for i in ids)


# ----------------------------------------------------------------------------------------------- no browser
def test_tex_becomes_mathml():
    aligned = mathml.tex_to_mathml(r"\begin{aligned} a &= b \\[4pt] &= c && \text{why} \end{aligned}", "block")
    assert "<mtable" in aligned and "4pt" not in aligned and "&amp;" not in aligned
    assert "&#x1D53C;" in mathml.tex_to_mathml(r"\mathbb E_q")   # a double-struck E, not a mathvariant
    assert "<mo>&#x0223C;</mo>" in mathml.tex_to_mathml(r"z \sim p(z)")
    assert "<msub><mi>log</mi><mn>2</mn></msub>" in mathml.tex_to_mathml(r"\log_2 x")   # the thin space stays out
    with pytest.raises(AelibError, match="unconverted"):
        mathml.tex_to_mathml(r"\nosuchcommand x")


def test_site_has_every_page_and_needs_no_other_host(built):
    from bs4 import BeautifulSoup

    assert built.pages == PAGES
    assert built.seconds < 60, f"the build took {built.seconds:.0f} s"
    for path in NOTEBOOKS:
        assert (built.out / "notebooks" / path.name).read_bytes() == path.read_bytes()
        assert built.explorers[f"{path.stem}.html"] == stored_explorers(path), path.name
    assert sum(built.explorers.values()) > 0
    css = (built.out / "static" / "site.css").read_text()
    assert not re.search(r"url\(\s*['\"]?(https?:)?//|@import", css), "the stylesheet loads something"

    folded = 0
    for i, name in enumerate(PAGES):
        text = (built.out / name).read_text()
        soup = BeautifulSoup(text, "html.parser")
        for tag in soup.find_all(["script", "link", "img", "iframe", "source", "video", "audio", "embed", "object"]):
            for attr in ("src", "href", "data"):
                url = tag.get(attr)
                assert not url or not re.match(r"(https?:)?//", url), f"{name} loads {url} from another host"
        for tag in soup.find_all(href=True) + soup.find_all(src=True):
            url = tag.get("href") or tag.get("src")
            parts = urlsplit(url)
            if parts.scheme in ("data", "http", "https", "mailto") or not parts.path:
                continue
            assert (built.out / unquote(parts.path)).is_file(), f"{name}: {url} is not a file of the site"
        assert not re.search(r"(?<!\d)0%\|", soup.get_text()), f"{name} shows a progress bar's 0% text"
        assert "widget-state+json" not in text and "widget-view+json" not in text, f"{name} needs a widget manager"
        assert len(soup.find_all("script", type="module")) == (1 if built.explorers[name] else 0)
        assert not soup.find_all("details", open=True), f"{name}: an answer is unfolded"
        folded += len(soup.find_all("details"))
        nxt = soup.find("a", rel="next")
        assert (nxt and nxt["href"]) == (PAGES[i + 1] if i + 1 < len(PAGES) else None)
        if name[:-5] in {p.stem for p in NOTEBOOKS}:
            assert soup.find("a", attrs={"download": True})["href"] == f"notebooks/{name[:-5]}.ipynb"
    assert folded > 0


def test_a_folder_that_is_not_a_site_is_not_replaced(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(AelibError, match="not built by"):
        site.build(tmp_path, notebook_dir=ROOT / "notebooks")
    assert (tmp_path / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------------------------------------ a browser
def pick_another_digit(page, explorer):
    """Click a digit of a posterior explorer that is not the one shown: its heat map and numbers must change."""
    from playwright.sync_api import expect

    heat = explorer.locator("canvas.aelib-heat")
    before, numbers = heat.evaluate("c => c.toDataURL()"), explorer.locator(".aelib-numbers").inner_text()
    target = explorer.locator(".aelib-digit-picker button:not(.aelib-active)").first
    index = target.get_attribute("data-index")
    target.click()
    expect(explorer.locator(".aelib-digit-picker button.aelib-active")).to_have_attribute("data-index", index)
    page.wait_for_function("([c, before]) => c.toDataURL() !== before", arg=[heat.element_handle(), before],
                           timeout=10_000)
    assert explorer.locator(".aelib-numbers").inner_text() != numbers, "the numbers did not follow the digit"


@pytest.fixture(scope="module")
def served(built):
    with site.serve(built.out) as url:
        yield url


@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
# pytest-playwright 0.10's base_url fixture, under pytest 9: not ours, and harmless
@pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods:DeprecationWarning")
@pytest.mark.parametrize("name", PAGES)
def test_page_in_chromium(page, built, served, name):
    from playwright.sync_api import expect

    foreign, errors = [], []

    def only_this_server(route):
        if route.request.url.startswith(served + "/"):
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda err: errors.append(str(err)))
    response = page.goto(f"{served}/{name}")
    assert response.ok, f"{name}: HTTP {response.status}"
    count = built.explorers[name]
    expect(page.locator(".aelib-explorer[data-ready=true]")).to_have_count(count, timeout=30_000)

    visible = page.evaluate(VISIBLE_TEXT)
    raw = [m.group() for m in RAW_TEX.finditer(visible)]
    assert not raw, f"{name} shows raw TeX: {raw[:5]}"

    for i in range(count):
        explorer = page.locator(".aelib-explorer").nth(i)
        if "aelib-posterior-explorer" in explorer.get_attribute("class").split():
            pick_another_digit(page, explorer)
            continue
        slider = explorer.locator(".aelib-z1 input, .aelib-t input").first
        digit = explorer.locator("canvas.aelib-digit")
        before = digit.evaluate("c => c.toDataURL()")
        slider.focus()
        for _ in range(KEY_PRESSES):
            slider.press("ArrowRight")
        page.wait_for_function("([c, before]) => c.toDataURL() !== before", arg=[digit.element_handle(), before],
                               timeout=10_000)
    assert not foreign, f"{name} asked other hosts for {foreign}"
    assert not errors, f"{name}: browser errors {errors}"


# ------------------------------------------------------------------------------- a posterior explorer on a page
def posterior_notebook(folder: Path) -> Path:
    """A stored notebook with a posterior explorer, as `tools/nbtools.py run` leaves one (nbclient's widget state,
    compacted), and an index notebook: a site of two pages, built without running anything."""
    import torch

    import aelib
    from aelib.explorers.posterior import PosteriorExplorer

    torch.manual_seed(0)
    data = aelib.data.load_offline()
    model = aelib.build("vae", latent_dim=2, hidden_dims=(128,))
    aelib.fit(model, data, epochs=1, progress=False)
    explorer = PosteriorExplorer(model, data, indices=[0, 1, 2])
    bundle, _ = explorer._repr_mimebundle_()
    saved = {explorer.model_id: stored.stored_state(explorer)}
    cell = nbformat.v4.new_code_cell("explorers.posterior_explorer(model, data)", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("execute_result", data=bundle, execution_count=1)]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A posterior explorer\n\nFor the test."),
                                         cell])
    nb.metadata["widgets"] = {stored.WIDGET_STATE: {"version_major": 2, "version_minor": 0, "state": saved}}
    stored.compact_widget_state(nb.metadata)
    folder.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Index\n\nTwo pages.")]),
                   folder / "00_index.ipynb")
    nbformat.write(nb, folder / "01_posterior.ipynb")
    return folder


@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
@pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods:DeprecationWarning")
def test_a_stored_posterior_explorer_picks_digits_on_its_page(page, tmp_path):
    """The site boots a stored posterior explorer with no kernel: a click on another digit repaints its heat map."""
    from playwright.sync_api import expect

    out = site.build(tmp_path / "site", notebook_dir=posterior_notebook(tmp_path / "notebooks"))
    assert out.explorers["01_posterior.html"] == 1 and sum(out.explorers.values()) == 1
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda err: errors.append(str(err)))
    with site.serve(out.out) as url:
        page.goto(f"{url}/01_posterior.html")
        explorer = page.locator(".aelib-posterior-explorer[data-ready=true]")
        expect(explorer).to_have_count(1, timeout=30_000)
        pick_another_digit(page, explorer)
    assert not errors, f"browser errors {errors}"


# ------------------------------------------------------------------------------------- what a notebook may run
HOSTILE = "window.__ran = (window.__ran || 0) + 1"
HOSTILE_NAME = '02_a"><img src=x onerror="window.__ran=9">.ipynb'


def hostile_notebooks(folder):
    """Two notebooks whose every cell tries to run a script on the page built from it, one by its file name."""
    folder.mkdir()
    md = nbformat.v4.new_markdown_cell
    first = nbformat.v4.new_notebook(cells=[
        md("# A hostile notebook\n\nIt tries everything.\n\n<script>" + HOSTILE + "</script>\n\n"
           f'<img src="x" onerror="{HOSTILE}"> <a href="javascript:{HOSTILE}" id="js-link">a link</a> '
           f'[a markdown link](javascript:{HOSTILE}) <svg onload="{HOSTILE}"></svg> '
           f'<iframe srcdoc="<script>parent.{HOSTILE}</script>"></iframe> <style>body {{ display: none }}</style>'),
        nbformat.v4.new_raw_cell(f"<script>{HOSTILE}</script>", metadata={"format": "text/html"}),
    ])
    code = nbformat.v4.new_code_cell("show()", execution_count=1)
    code.outputs = [
        nbformat.v4.new_output("display_data", data={"text/html": f"<b>bold</b><script>{HOSTILE}</script>",
                                                     "text/plain": "bold"}),
        nbformat.v4.new_output("display_data", data={"application/javascript": HOSTILE}),
        nbformat.v4.new_output("display_data", data={"image/svg+xml": f'<svg onload="{HOSTILE}"></svg>'}),
        nbformat.v4.new_output("display_data", data={"text/markdown": f"<img src=x onerror='{HOSTILE}'>"}),
    ]
    first.cells.append(code)
    nbformat.write(first, folder / "01_hostile.ipynb")
    second = nbformat.v4.new_notebook(cells=[md("# <img src=x onerror='window.__ran=7'> Second\n\nText.")])
    nbformat.write(second, folder / HOSTILE_NAME)
    return folder


def test_nothing_from_a_notebook_is_written_as_a_script(tmp_path):
    out = site.build(tmp_path / "site", notebook_dir=hostile_notebooks(tmp_path / "notebooks"))
    from bs4 import BeautifulSoup

    for name in out.pages:
        soup = BeautifulSoup((out.out / unquote(name)).read_text(), "html.parser")
        assert not [s for s in soup.find_all("script") if "__ran" in s.get_text()], f"{name}: the notebook's script"
        handlers = [(t.name, a) for t in soup.find_all(True) for a in t.attrs if a.lower().startswith("on")]
        assert not handlers, f"{name}: event handlers {handlers}"
        links = [t["href"] for t in soup.find_all(href=True) if t["href"].strip().lower().startswith("javascript")]
        assert not links, f"{name}: {links}"
        content = soup.find("main") or soup   # the notebook's part of the page (the template has its own <style>)
        assert not content.find_all(["script", "iframe", "style", "svg", "object", "embed"]), name
    assert "02_a%22%3E%3Cimg" in (out.out / "01_hostile.html").read_text()   # the name is a link, not markup


@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
@pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods:DeprecationWarning")
def test_no_script_from_a_notebook_runs_in_the_browser(page, tmp_path):
    out = site.build(tmp_path / "site", notebook_dir=hostile_notebooks(tmp_path / "notebooks"))
    with site.serve(out.out) as url:
        for name in out.pages:
            page.goto(f"{url}/{name}")
            page.wait_for_load_state("load")
            for link in page.locator("a").all():   # a javascript: link would run when clicked
                if (link.get_attribute("href") or "").startswith("javascript"):
                    link.click()
            assert page.evaluate("window.__ran") is None, f"a script from the notebook ran on {name}"
            assert page.locator("body").is_visible(), f"{name}: the notebook's <style> hid the page"


def test_a_rebuild_keeps_what_the_user_added(tmp_path):
    """The layout for GitHub Pages (a .git folder, a CNAME file) survives a rebuild; the pages are replaced."""
    out = tmp_path / "site"
    site.build(out, notebook_dir=ROOT / "notebooks")
    (out / ".git").mkdir()
    (out / ".git" / "HEAD").write_text("ref: refs/heads/gh-pages\n")
    (out / "CNAME").write_text("course.example.org\n")
    (out / "index.html").write_text("an old page")
    site.build(out, notebook_dir=ROOT / "notebooks")
    assert (out / ".git" / "HEAD").read_text() == "ref: refs/heads/gh-pages\n"
    assert (out / "CNAME").read_text() == "course.example.org\n"
    assert (out / "index.html").read_text() != "an old page"


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not a readable notebook"),
    ("", "is not a readable notebook"),
    (nbformat.writes(nbformat.v4.new_notebook()), "must start with a '# Title' line"),
    (nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("no title")])), "'# Title'"),
])
def test_a_bad_notebook_is_named(tmp_path, content, message):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    shutil.copy(ROOT / "notebooks" / "00_index.ipynb", folder)
    (folder / "01_bad.ipynb").write_text(content)
    with pytest.raises(AelibError, match=message) as err:
        site.build(tmp_path / "site", notebook_dir=folder)
    assert "01_bad.ipynb" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notebooks"]   # nothing left behind


@pytest.mark.parametrize("out", ["", ".", ".."])
def test_out_is_never_the_current_folder_or_above(tmp_path, monkeypatch, out):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with pytest.raises(AelibError, match="would replace the folder you are in"):
        site.build(out, notebook_dir=ROOT / "notebooks")
    assert list(work.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["work"]


def test_out_as_a_symlink_or_in_a_read_only_folder_is_a_clear_error(tmp_path, read_only_dir):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(AelibError, match="symbolic link"):
        site.build(tmp_path / "link", notebook_dir=ROOT / "notebooks")
    with pytest.raises(AelibError, match="cannot build the site"):
        site.build(read_only_dir / "site", notebook_dir=ROOT / "notebooks")
    assert (tmp_path / "link").is_symlink()


# ------------------------------------------------------------------------------------- every student's device
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]   # axe-core's WCAG 2.0 and 2.1 rules, levels A and AA


@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
@pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods:DeprecationWarning")
@pytest.mark.parametrize("width", [1280, 360])
@pytest.mark.parametrize("name", PAGES)
def test_page_passes_axe_and_fits_the_screen(page, built, served, name, width):
    """axe-core (shipped in axe-playwright-python: no CDN) finds no WCAG 2.1 A/AA violation, explorers booted, and
    the page never scrolls sideways, on a desktop and on a phone."""
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import expect

    page.set_viewport_size({"width": width, "height": 800})
    page.goto(f"{served}/{name}")
    expect(page.locator(".aelib-explorer[data-ready=true]")).to_have_count(built.explorers[name], timeout=30_000)
    violations = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG}}).response["violations"]
    found = [(v["id"], n["target"][0]) for v in violations for n in v["nodes"]]
    assert not found, f"{name} at {width} px: {found[:8]}"
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"), \
        f"{name} scrolls sideways at {width} px"


@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
@pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods:DeprecationWarning")
def test_a_finger_drags_the_code_on_a_phone(browser, built, served):
    """On a 360 px touch screen, a finger dragged across the (scaled) map moves the code and does not scroll the page."""
    name = next(n for n in PAGES if built.explorers.get(n))
    context = browser.new_context(viewport={"width": 360, "height": 740}, has_touch=True, is_mobile=True)
    page = context.new_page()
    page.goto(f"{served}/{name}")
    explorer = page.locator(".aelib-latent-explorer[data-ready=true]").first
    explorer.wait_for(timeout=30_000)
    explorer.scroll_into_view_if_needed()
    box = explorer.locator("canvas.aelib-map").bounding_box()
    assert box["x"] + box["width"] <= 360, "the map runs off a phone's screen"
    z1, scrolled = explorer.locator(".aelib-z1 input"), page.evaluate("scrollY")
    before = z1.input_value()
    cdp = context.new_cdp_session(page)
    x, y = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for i in range(1, 11):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x + 8 * i, "y": y - 6 * i}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    page.wait_for_timeout(200)
    assert z1.input_value() != before, "the drag did not move the code"
    assert page.evaluate("scrollY") == scrolled, "the drag scrolled the page"
    context.close()
