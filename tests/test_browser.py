"""The explorers in a real browser: JupyterLab + headless Chromium driven by Playwright, and saved pages.

In JupyterLab (a server on 127.0.0.1 with a random token in a temporary root; notebooks run in quick mode, as
kernels inherit AELIB_QUICK=1 from the server):
* VAE (notebook 03): arrow keys on the z1 slider change the decoded digit and move the marker right; a drag on the
  map moves the code; both still work while another cell trains and after the kernel is shut down;
* CVAE (notebook 04): a click on another digit, and the arrow keys on the digit picker, change the decoded digit;
  opened without running a cell, the notebook shows pictures of its explorers (never a text repr);
* the posterior explorer: setting ``index`` from Python adds and shows that digit; the arrow keys walk its picker;
  a click repaints after the kernel is shut down.
Without JupyterLab:
* a page written by ``Explorer.save_html`` works from file:// with every other request aborted, and so does one of
  the posterior explorer (aelib.explorers.posterior): picking a digit repaints its true posterior;
* explorer.js decodes as ``model.decode`` does (float32 weights: <= 1e-4; int8 weights measured).

Needs Chromium (the Debian package: `apt-get install chromium`; never `playwright install`) and the Python packages
playwright + pytest-playwright; without them the tests skip and say why. Options of pytest-playwright work, e.g.
`--headed` or `--tracing retain-on-failure`. With AELIB_SAVE_SCREENSHOT=1 the VAE run trains in full mode and saves
the explorer to figures/latent_explorer.png (normal runs leave the repository alone).
"""
from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from tools import labserver

ROOT = Path(__file__).resolve().parents[1]

# The notebooks the browser test opens, by model. None: the test writes a small notebook explorer_<model>.ipynb
# (setup, a short training run, latent_explorer) into the server's root. A path relative to the repository (e.g.
# "notebooks/03_vae.ipynb") is copied there instead and opened: its first `.aelib-latent-explorer` is tested.
EXPLORER_NOTEBOOKS: dict[str, str | None] = {"vae": "notebooks/03_vae.ipynb", "cvae": "notebooks/04_cvae.ipynb"}

CHROMIUM, CHROMIUM_ARGS = labserver.CHROMIUM, labserver.CHROMIUM_ARGS
SAVE_SCREENSHOT = os.environ.get("AELIB_SAVE_SCREENSHOT", "") not in ("", "0")
SCREENSHOT_PATH = ROOT / "figures" / "latent_explorer.png"
RUN_TIMEOUT = 240_000         # ms: kernel start + every cell (quick-mode training) until the explorer shows
UPDATE_TIMEOUT = 30_000       # ms: one slider move until the new images are shown
KEY_PRESSES = 20              # ArrowRight presses on the z1 slider (each one slider step, 1/200 of its range)


def _missing() -> str | None:
    if CHROMIUM is None:
        return "no Chromium: install the Debian package (apt-get install chromium) or set AELIB_CHROMIUM"
    try:
        import playwright.sync_api  # noqa: F401
        import pytest_playwright  # noqa: F401
    except ImportError:
        return "playwright / pytest-playwright are not installed (pip install playwright pytest-playwright)"
    return None


pytestmark = [
    pytest.mark.skipif(_missing() is not None, reason=str(_missing())),
    # pytest-playwright 0.10's base_url fixture, under pytest 9: not ours, and harmless
    pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods:DeprecationWarning"),
]


# ------------------------------------------------------------------------------------------------ notebooks
def explorer_notebook(model: str, full_epochs: int = 30) -> dict:
    """A small notebook: setup, train a 2-D ``model`` (quick mode: 3 epochs), then its latent explorer."""
    import nbformat

    cells = [
        nbformat.v4.new_markdown_cell(f"# Explorer test: {model.upper()}\n\nWritten by tests/test_browser.py."),
        nbformat.v4.new_code_cell("import aelib\nfrom aelib import notebook, explorers\n\n"
                                  "nb = notebook.setup(seed=0)\n"
                                  "data = aelib.data.load_offline()   # no download attempt\nprint(data)"),
        nbformat.v4.new_code_cell(f'model = aelib.build("{model}", latent_dim=2)\n'
                                  f"history = aelib.fit(model, data, epochs=nb.epochs({full_epochs}))"),
        nbformat.v4.new_code_cell("explorers.latent_explorer(model, data)"),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    return nb


def place_notebook(model: str, root: Path) -> str:
    """Put the notebook for ``model`` into the server's root; return its name there."""
    source = EXPLORER_NOTEBOOKS[model]
    if source is None:
        import nbformat

        name = f"explorer_{model}.ipynb"
        nbformat.write(explorer_notebook(model), root / name)
        return name
    path = ROOT / source
    shutil.copy(path, root / path.name)
    return path.name


# ------------------------------------------------------------------------------------------------ the server
@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on 127.0.0.1 with a random token, its own config/runtime/workspace folders, in a temp root."""
    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "AELIB_QUICK": "1",
           "AELIB_DATA": os.environ.get("AELIB_DATA", str(ROOT / "data"))}
    if SAVE_SCREENSHOT:                  # the README figure shows a model trained in full mode
        env.update(AELIB_QUICK=None, CI=None)
    try:
        with labserver.jupyterlab(tmp_path_factory.mktemp("lab"), env) as server:
            yield server
    except RuntimeError as err:
        pytest.fail(str(err))


def pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def changed_box(before: np.ndarray, after: np.ndarray, threshold: int = 8):
    """(left, top, right, bottom) of the pixels that changed by more than ``threshold`` levels, or None."""
    if before.shape != after.shape:
        return (0, 0, after.shape[1], after.shape[0])
    rows, cols = np.nonzero(np.abs(before - after).max(axis=2) > threshold)
    if not len(rows):
        return None
    return cols.min(), rows.min(), cols.max() + 1, rows.max() + 1


def run_notebook(page, lab: labserver.Lab, name: str, css: str = ".aelib-latent-explorer"):
    return labserver.run_all(page, lab, name, css, RUN_TIMEOUT)


def settled_screenshot(locator, before: np.ndarray | None = None, timeout: float = UPDATE_TIMEOUT / 1000):
    """A screenshot of ``locator`` once it differs from ``before`` and two shots in a row agree."""
    deadline = time.monotonic() + timeout
    last = pixels(locator.screenshot())
    while time.monotonic() < deadline:
        time.sleep(0.1)
        shot = pixels(locator.screenshot())
        if np.array_equal(shot, last) and (before is None or changed_box(before, shot) is not None):
            return shot
        last = shot
    return last


def press(locator, key: str, n: int):
    locator.focus()
    for _ in range(n):
        locator.press(key)


def marker_x(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """Mean column of the marker's black ring before and after a move (pixels that turned black, or stopped)."""
    ink_before, ink_after = before.max(axis=2) < 40, after.max(axis=2) < 40
    return np.nonzero(ink_before & ~ink_after)[1].mean(), np.nonzero(ink_after & ~ink_before)[1].mean()


BUSY_CELL = """\
# Added by tests/test_browser.py: keep the kernel busy training while the test moves the explorer.
import time
busy = aelib.build("vae", latent_dim=2)
print("training while you explore")
until = time.monotonic() + 120
while time.monotonic() < until:
    aelib.fit(busy, data, epochs=1, progress=False)
"""


def test_vae_explorer_in_jupyterlab_live_busy_and_without_a_kernel(page, lab):
    """03's latent explorer: arrow keys on z1 move the marker right and change the digit; a drag on the map moves
    the code; both still work while another cell trains, and after the kernel is shut down."""
    import nbformat
    from playwright.sync_api import expect

    start = time.monotonic()
    name = place_notebook("vae", lab.root)
    nb = nbformat.read(lab.root / name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(BUSY_CELL))
    nbformat.write(nb, lab.root / name)
    explorer = run_notebook(page, lab, name)
    digit, lmap = explorer.locator("canvas.aelib-digit"), explorer.locator("canvas.aelib-map")
    readout = explorer.locator(".aelib-z1 .aelib-readout")
    slider = explorer.locator(".aelib-z1 input[type=range]")
    digit_before, map_before = settled_screenshot(digit), settled_screenshot(lmap)
    value_before = readout.inner_text()

    press(slider, "ArrowRight", KEY_PRESSES)
    expect(readout).not_to_have_text(value_before, timeout=UPDATE_TIMEOUT)
    digit_after, map_after = settled_screenshot(digit, digit_before), settled_screenshot(lmap, map_before)
    assert changed_box(digit_before, digit_after) is not None, "the decoded digit did not change"
    box = changed_box(map_before, map_after)
    assert box is not None, "the marker on the latent map did not move"
    assert box[2] - box[0] > 20 and box[3] - box[1] < 24, f"the marker should move sideways only; changed {box}"
    old_x, new_x = marker_x(map_before, map_after)
    assert new_x > old_x + 5, f"the marker should move right (z1 grew): from x = {old_x:.0f} to {new_x:.0f}"
    print(f"z1 {value_before} -> {readout.inner_text()}; map changed in {box}")
    if SAVE_SCREENSHOT:
        page.mouse.move(0, 0)   # no hover highlight in the picture
        SCREENSHOT_PATH.parent.mkdir(exist_ok=True)
        explorer.screenshot(path=str(SCREENSHOT_PATH))

    # a click and a drag on the map move the code there; the sliders follow
    lmap.scroll_into_view_if_needed()
    bbox = lmap.bounding_box()
    z1_before, z2_before = readout.inner_text(), explorer.locator(".aelib-z2 .aelib-readout").inner_text()
    digit_before = settled_screenshot(digit)
    page.mouse.move(bbox["x"] + 100, bbox["y"] + 240)
    page.mouse.down()
    page.mouse.move(bbox["x"] + 120, bbox["y"] + 200, steps=5)
    page.mouse.move(bbox["x"] + 140, bbox["y"] + 60, steps=5)
    page.mouse.up()
    expect(readout).not_to_have_text(z1_before, timeout=UPDATE_TIMEOUT)
    expect(explorer.locator(".aelib-z2 .aelib-readout")).not_to_have_text(z2_before, timeout=UPDATE_TIMEOUT)
    assert changed_box(digit_before, settled_screenshot(digit, digit_before)) is not None, "a drag changed nothing"

    # while another cell trains, the explorer answers at once
    expect(page.locator(".jp-OutputArea-output pre", has_text="training while you explore")).to_be_visible(
        timeout=RUN_TIMEOUT)
    expect(page.locator("#jp-main-statusbar").get_by_text("Busy")).to_be_visible(timeout=UPDATE_TIMEOUT)
    explorer.scroll_into_view_if_needed()
    before = settled_screenshot(digit)
    press(slider, "ArrowLeft", 2 * KEY_PRESSES)
    after = settled_screenshot(digit, before, timeout=5)
    assert changed_box(before, after) is not None, "while the kernel trains, the explorer did not respond"
    expect(page.locator("#jp-main-statusbar").get_by_text("Busy")).to_be_visible()

    # after the kernel is shut down, the explorer on screen still answers
    labserver.kernel_menu(page, "Shut Down Kernel")
    expect(page.locator("#jp-main-statusbar").get_by_text("No Kernel")).to_be_visible(timeout=UPDATE_TIMEOUT)
    explorer.scroll_into_view_if_needed()
    before, value = settled_screenshot(digit), readout.inner_text()
    press(slider, "ArrowRight", 2 * KEY_PRESSES)
    expect(readout).not_to_have_text(value, timeout=UPDATE_TIMEOUT)
    after = settled_screenshot(digit, before, timeout=5)
    assert changed_box(before, after) is not None, "without a kernel, the explorer did not respond"
    print(f"{time.monotonic() - start:.1f} s including the notebook run")


def test_a_stored_notebook_shows_pictures_of_its_explorers_before_any_cell_runs(page, lab):
    """Opened without running a cell (JupyterLab does not restore stored widget state by default), notebook 04 shows
    each explorer as its stored picture, never as a text repr or a "model not found" error."""
    from playwright.sync_api import expect

    name = place_notebook("cvae", lab.root)
    page.goto(lab.notebook_url(name))
    expect(page.locator("#jp-main-statusbar").get_by_text("Idle")).to_be_visible(timeout=90_000)
    for call in ("latent_explorer(cvae, data)", "style_explorer(cvae, data)"):
        cell = page.locator(".jp-CodeCell").filter(has_text=call).first
        cell.scroll_into_view_if_needed()
        picture = cell.locator(".jp-OutputArea-output img")
        expect(picture).to_be_visible(timeout=UPDATE_TIMEOUT)
        assert picture.evaluate("img => img.naturalWidth") > 500, f"{call}: no picture of the explorer"
        text = cell.locator(".jp-OutputArea-output").inner_text()
        assert "Explorer(" not in text and "not found" not in text, f"{call}: {text[:200]}"


def test_cvae_explorer_switches_the_digit(page, lab):
    from playwright.sync_api import expect

    explorer = run_notebook(page, lab, place_notebook("cvae", lab.root))
    digit = explorer.locator("canvas.aelib-digit")
    picker = explorer.locator(".aelib-digit-picker")
    before = settled_screenshot(digit)
    current = picker.locator("button.aelib-active").inner_text().strip()
    target = "7" if current != "7" else "1"
    picker.get_by_role("radio", name=target, exact=True).click()
    expect(picker.locator("button.aelib-active")).to_have_text(target, timeout=UPDATE_TIMEOUT)
    after = settled_screenshot(digit, before)
    assert changed_box(before, after) is not None, f"switching the digit {current} -> {target} changed nothing"
    # the arrow keys walk the digits too, inside JupyterLab
    picker.locator("button.aelib-active").press("ArrowRight")
    expect(picker.locator("button.aelib-active")).to_have_text(str((int(target) + 1) % 10), timeout=UPDATE_TIMEOUT)
    assert changed_box(after, settled_screenshot(digit, after)) is not None, "ArrowRight on the digits did nothing"


POSTERIOR_CELLS = [
    "import time\nimport aelib, torch\nfrom aelib import explorers\n\ntorch.manual_seed(0)\n"
    "data = aelib.data.load_offline()\nmodel = aelib.build('vae', latent_dim=2, hidden_dims=(128,))\n"
    "aelib.fit(model, data, epochs=1, progress=False);",
    "explorer = explorers.posterior_explorer(model, data, indices=[0, 100])\nexplorer",
    "time.sleep(3)   # the widget is on screen by now: it must follow Python\nexplorer.index = 7",
]


def test_posterior_explorer_in_jupyterlab_follows_python_and_outlives_the_kernel(page, lab):
    """Setting ``explorer.index`` from Python to a digit not yet computed adds it to the picker and shows it; the
    arrow keys walk the picker inside JupyterLab; after the kernel is shut down a click still repaints."""
    import nbformat
    from playwright.sync_api import expect

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Posterior explorer test")]
                                  + [nbformat.v4.new_code_cell(c) for c in POSTERIOR_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, lab.root / "posterior_explorer.ipynb")
    explorer = run_notebook(page, lab, "posterior_explorer.ipynb", ".aelib-posterior-explorer")
    buttons = explorer.locator(".aelib-digit-picker button")
    active = explorer.locator(".aelib-digit-picker button.aelib-active")
    expect(buttons).to_have_count(3, timeout=RUN_TIMEOUT)            # digit 7 computed by the kernel, and sent
    expect(active).to_have_attribute("data-index", "7")
    expect(page.locator("#jp-main-statusbar").get_by_text("Idle")).to_be_visible(timeout=UPDATE_TIMEOUT)
    heat = explorer.locator("canvas.aelib-heat")
    order = buttons.evaluate_all("bs => bs.map((b) => b.dataset.index)")
    before = heat.evaluate("c => c.toDataURL()")
    active.press("ArrowRight")
    following = order[(order.index("7") + 1) % len(order)]
    expect(active).to_have_attribute("data-index", following)
    page.wait_for_function("([c, before]) => c.toDataURL() !== before", arg=[heat.element_handle(), before],
                           timeout=UPDATE_TIMEOUT)

    labserver.kernel_menu(page, "Shut Down Kernel")
    expect(page.locator("#jp-main-statusbar").get_by_text("No Kernel")).to_be_visible(timeout=UPDATE_TIMEOUT)
    explorer.scroll_into_view_if_needed()
    before = heat.evaluate("c => c.toDataURL()")
    target = next(i for i in order if i != following)
    explorer.locator(f'.aelib-digit-picker button[data-index="{target}"]').click()
    expect(active).to_have_attribute("data-index", target)
    page.wait_for_function("([c, before]) => c.toDataURL() !== before", arg=[heat.element_handle(), before],
                           timeout=UPDATE_TIMEOUT)


# ------------------------------------------------------------------------------------------- without JupyterLab
def small_model(name: str, epochs: int = 1):
    import torch

    import aelib

    torch.manual_seed(0)
    model = aelib.build(name, latent_dim=2)
    data = aelib.data.load_offline()
    aelib.fit(model, data, epochs=epochs, progress=False)
    return model, data


@pytest.fixture(scope="module", params=["vae", "cvae"])
def saved_page(request, tmp_path_factory):
    from aelib import explorers

    model, data = small_model(request.param, epochs=3)
    explorer = explorers.latent_explorer(model, data)
    path = explorer.save_html(tmp_path_factory.mktemp("page") / f"{request.param}.html")
    return request.param, path


def test_a_saved_page_works_from_file_with_the_network_blocked(page, saved_page):
    from playwright.sync_api import expect

    name, path = saved_page
    foreign, errors = [], []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    def route(r):
        if r.request.url.startswith(("file:", "blob:", "data:")):
            r.continue_()
        else:
            foreign.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(path.as_uri())
    explorer = page.locator(".aelib-explorer[data-ready=true]")
    expect(explorer).to_be_visible(timeout=UPDATE_TIMEOUT)
    digit = explorer.locator("canvas.aelib-digit")
    before = settled_screenshot(digit)
    press(explorer.locator(".aelib-z1 input"), "End", 1)   # z1 jumps to the end of its range
    assert changed_box(before, settled_screenshot(digit, before)) is not None, "a key press changed nothing"
    if name == "cvae":
        before = settled_screenshot(digit)
        explorer.get_by_role("radio", name="7", exact=True).click()
        assert changed_box(before, settled_screenshot(digit, before)) is not None, "the digit picker changed nothing"
    assert foreign == [], f"the saved page asked the network for {foreign}"
    assert errors == [], f"console errors: {errors}"
    print(f"{name}: {path.stat().st_size / 1e6:.2f} MB page")


# The plot box of posterior_explorer.js's heat canvas (its PLOT), and the overview drawn in its top-right corner.
POSTERIOR_PLOT = {"left": 50, "top": 8, "size": 276, "inset": 80}
DARKEST_JS = """([c, plot]) => {
  // the darkest pixel inside the plot box (not its frame, not the overview): the peak of the heat map
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let best = [Infinity, 0, 0];
  for (let y = plot.top + 2; y < plot.top + plot.size - 2; y++) {
    for (let x = plot.left + 2; x < plot.left + plot.size - 2; x++) {
      if (x > plot.left + plot.size - plot.inset && y < plot.top + plot.inset) continue;
      const i = 4 * (y * c.width + x);
      const sum = d[i] + d[i + 1] + d[i + 2];
      if (sum < best[0]) best = [sum, x, y];
    }
  }
  return best;
}"""


def posterior_peak_pixel(entry: dict, post) -> tuple[float, float]:
    """Where posterior_explorer.js should draw the peak of p(z|x) (``post``: aelib.posterior's): canvas (x, y)."""
    from aelib.explorers.posterior import view

    density = post.density[0].numpy()
    row, col = np.unravel_index(np.argmax(density), density.shape)    # rows follow z2
    z1, z2 = float(post.z1[0, col]), float(post.z2[0, row])
    (x0, x1), (y0, y1) = view(entry["extent"])
    plot = POSTERIOR_PLOT
    return (plot["left"] + (z1 - x0) / (x1 - x0) * plot["size"], plot["top"] + (y1 - z2) / (y1 - y0) * plot["size"])


@pytest.fixture(scope="module")
def posterior_page(tmp_path_factory):
    from aelib import explorers

    model, data = small_model("vae", epochs=3)
    labels = data.test_y.numpy()
    picked = [int(np.flatnonzero(labels == d)[0]) for d in (1, 3, 8)]
    explorer = explorers.posterior_explorer(model, data, indices=picked)
    return explorer, explorer.save_html(tmp_path_factory.mktemp("page") / "posterior.html")


def test_a_saved_posterior_page_picks_digits_without_a_kernel(page, posterior_page):
    """A page written by PosteriorExplorer.save_html, from file:// with every other request aborted: a click on
    another digit (and ArrowRight on the picker) repaints the heat map, with its peak where p(z|x) peaks, and shows
    that digit's numbers; no kernel anywhere."""
    from playwright.sync_api import expect

    explorer_py, path = posterior_page
    foreign, errors = [], []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "blob:", "data:"))
               else (foreign.append(r.request.url), r.abort()))
    page.goto(path.as_uri())
    explorer = page.locator(".aelib-posterior-explorer[data-ready=true]")
    expect(explorer).to_be_visible(timeout=UPDATE_TIMEOUT)
    heat = explorer.locator("canvas.aelib-heat")
    active = explorer.locator(".aelib-digit-picker button.aelib-active")
    entries = {e["index"]: e for e in explorer_py.entries}
    order = sorted(entries, key=lambda i: (entries[i]["label"], i))
    expect(active).to_have_attribute("data-index", str(explorer_py.index))

    def check_shown(i):
        entry = entries[i]
        expect(explorer.locator(".aelib-caption").first).to_have_text(f"test digit #{i} (a {entry['label']})")
        numbers = explorer.locator(".aelib-numbers").inner_text()
        for value in (entry["elbo"], entry["log_px"], entry["gap"]):
            assert ("\u2212" if value < 0 else "") + f"{abs(value):.2f}" in numbers, (i, value, numbers)
        explorer_py.index = i
        _, x, y = page.evaluate(DARKEST_JS, [heat.element_handle(), POSTERIOR_PLOT])
        want = posterior_peak_pixel(entry, explorer_py.true_posterior())
        cell = POSTERIOR_PLOT["size"] / entry["cells"]
        assert abs(x - want[0]) <= 2 * cell + 2 and abs(y - want[1]) <= 2 * cell + 2, \
            f"digit {i}: the heat map peaks at ({x}, {y}) on the canvas, p(z|x) at {want}"

    check_shown(order[0])
    before = heat.evaluate("c => c.toDataURL()")
    target = order[2]
    explorer.locator(f'.aelib-digit-picker button[data-index="{target}"]').click()
    expect(active).to_have_attribute("data-index", str(target))
    page.wait_for_function("([c, before]) => c.toDataURL() !== before", arg=[heat.element_handle(), before],
                           timeout=UPDATE_TIMEOUT)
    check_shown(target)
    before = heat.evaluate("c => c.toDataURL()")
    active.press("ArrowRight")                          # wraps around to the first digit
    expect(active).to_have_attribute("data-index", str(order[0]))
    expect(active).to_be_focused()
    page.wait_for_function("([c, before]) => c.toDataURL() !== before", arg=[heat.element_handle(), before],
                           timeout=UPDATE_TIMEOUT)
    check_shown(order[0])
    assert foreign == [], f"the saved page asked the network for {foreign}"
    assert errors == [], f"console errors: {errors}"
    print(f"posterior page: {path.stat().st_size / 1e3:.0f} kB for {len(entries)} digits")


PARITY_JS = """async ([source, spec, weights, codes, digits]) => {
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const { unpackDecoder, decode } = await import(url);
  const bytes = Uint8Array.from(atob(weights), (c) => c.charCodeAt(0));
  const net = unpackDecoder(spec, new DataView(bytes.buffer));
  const out = [];
  for (const y of digits) for (const z of codes) out.push(Array.from(decode(net, z, y)));
  return out;
}"""


@pytest.mark.parametrize("name", ["vae", "cvae"])
def test_the_javascript_decoder_matches_torch(page, name):
    """explorer.js's decode at 60 codes (and every digit): the largest pixel-probability difference from
    model.decode is <= 1e-4 with float32 weights; int8 weights (the stored notebooks' format) are measured too."""
    import base64

    import torch

    from aelib.explorers import latent, packing

    model, _ = small_model(name)
    codes = np.random.default_rng(0).normal(scale=1.5, size=(60, 2)).astype(np.float32)
    digits = list(range(10)) if model.conditional else [0]
    expected = np.concatenate([
        model.decode(torch.from_numpy(codes), torch.full((len(codes),), y) if model.conditional else None)
        .reshape(len(codes), -1).numpy() for y in digits])
    page.goto("about:blank")
    source = latent.ESM
    worst = {}
    for dtype in packing.WEIGHT_DTYPES:
        spec, weights = packing.pack_decoder(model, dtype)
        got = np.array(page.evaluate(PARITY_JS, [source, spec, base64.b64encode(weights).decode(),
                                                 codes.tolist(), digits]))
        assert got.shape == expected.shape
        worst[dtype] = float(np.abs(got - expected).max())
    print(f"{name}: largest |JS - torch| pixel probability: " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))
    assert worst["float32"] <= 1e-4
    assert worst["int8"] <= 0.02   # the bound README states for the widget state stored in the notebooks
