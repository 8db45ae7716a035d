"""How fast the latent-space explorers answer, and how much they send: in Python, and in a real browser.

    python -m benchmarks.widget_latency                 # Python side + browser (JupyterLab and saved pages)
    python -m benchmarks.widget_latency --no-browser    # Python side only

Python side: what building each explorer costs (encode the test digits, draw the map, pack the weights; once per
explorer) and what it sends to the browser (weights, map, codes, the ES module), and the size of its saved page
(``save_html``, float32 and int8 weights). There is no per-event Python work any more: the browser decodes.

Browser side (Debian Chromium, headless; never ``playwright install``):
* ``decode``: one decode in explorer.js, median / p95 of 300 (the per-event compute);
* key press -> pixels: the time from a keydown on a focused slider to the first animation frame in which the
  explorer's canvases differ (a capturing keydown listener records ``performance.now()``; a requestAnimationFrame
  loop compares a checksum of the decoded digit's canvas). ``--presses`` presses per explorer, spaced 120 ms apart, in
  JupyterLab with the kernel idle, with the kernel busy training another cell, after the kernel is shut down, and on
  the saved page opened from file://. Target: p95 <= 17 ms, the next frame at 60 Hz.

The models are small and trained for ``--epochs`` epochs on the 4,000 offline training digits; the decode cost does
not depend on training. Quote the medians and the load average printed with them: the machine is shared.
"""
from __future__ import annotations

import argparse
import base64
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import aelib
from aelib import explorers
from aelib.explorers import latent, packing
from benchmarks.machine import markdown_table
from tools import labserver

ROOT = Path(__file__).resolve().parents[1]

# (label, notebook expression building it, key to press, CSS of the slider it presses)
EXPLORERS = [
    ("latent_explorer(vae)", "explorers.latent_explorer(vae, data)", "ArrowRight", ".aelib-z1 input"),
    ("latent_explorer(cvae)", "explorers.latent_explorer(cvae, data)", "ArrowRight", ".aelib-z1 input"),
    ("interpolation_explorer(vae)", "explorers.interpolation_explorer(vae, data)", "ArrowRight", ".aelib-t input"),
    ("style_explorer(cvae)", "explorers.style_explorer(cvae, data)", "ArrowRight", ".aelib-z1 input"),
]

PROBE = """() => {
  if (window.__latency) return;
  const checksum = (canvas) => {   // the decoded digit: what the student watches
    const d = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let s = 0;
    for (let i = 0; i < d.length; i += 4) s = (s * 31 + d[i]) % 2147483647;
    return s;
  };
  const state = { times: [], misses: 0 };
  window.__latency = state;
  document.addEventListener("keydown", (e) => {
    const t0 = performance.now();
    const explorer = e.target.closest && e.target.closest(".aelib-explorer");
    if (!explorer) return;
    const canvas = explorer.querySelector("canvas.aelib-digit");
    const before = checksum(canvas);
    const check = () => {
      if (checksum(canvas) !== before) state.times.push(performance.now() - t0);
      else if (performance.now() - t0 < 2000) requestAnimationFrame(check);
      else state.misses += 1;
    };
    requestAnimationFrame(check);
  }, true);
}"""

DECODE_TIME = """async ([source, spec, weights]) => {
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const { unpackDecoder, decode } = await import(url);
  const bytes = Uint8Array.from(atob(weights), (c) => c.charCodeAt(0));
  const net = unpackDecoder(spec, new DataView(bytes.buffer));
  const times = [];
  for (let i = 0; i < 350; i++) {
    const t = performance.now();
    decode(net, [Math.random() * 4 - 2, Math.random() * 4 - 2], i % 10);
    if (i >= 50) times.push(performance.now() - t);
  }
  return times;
}"""

NOTEBOOK = [
    "import aelib, torch\nfrom aelib import explorers\ndata = aelib.data.load_offline()",
    "torch.manual_seed(0)\nvae = aelib.build('vae', latent_dim=2)\ncvae = aelib.build('cvae', latent_dim=2)\n"
    "for m in (vae, cvae):\n    aelib.fit(m, data, epochs={epochs}, progress=False)",
    *[expression for _, expression, _, _ in EXPLORERS],
    "# keeps the kernel busy training while the benchmark presses keys\nimport time\n"
    "busy = aelib.build('vae', latent_dim=2)\nprint('training while you explore')\n"
    "until = time.monotonic() + {busy_seconds}\nwhile time.monotonic() < until:\n"
    "    aelib.fit(busy, data, epochs=1, progress=False)\nprint('done training')",
]


def ms(times) -> str:
    times = np.asarray(times)
    if not len(times):
        return "   -      -  "
    return f"{np.median(times):6.1f} {np.percentile(times, 95):6.1f}"


def load_average() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def train_models(epochs: int):
    data = aelib.data.load_offline()
    torch.manual_seed(0)
    models = {name: aelib.build(name, latent_dim=2) for name in ("vae", "cvae")}
    for model in models.values():
        aelib.fit(model, data, epochs=epochs, progress=False)
    return data, models


def python_side(data, models, out: Path) -> dict[str, Path]:
    print("\nPython side: built once per explorer (median of 3), sent to the browser once")
    print(f"{'explorer':30s} {'build s':>8s} {'weights':>9s} {'map':>8s} {'codes':>8s} {'module':>8s} "
          f"{'page f32':>9s} {'page int8':>10s}")
    pages = {}
    for label, expression, _, _ in EXPLORERS:
        builds = []
        for _ in range(3):
            start = time.perf_counter()
            explorer = eval(expression, {"explorers": explorers, "data": data, **models})   # noqa: S307 (our table)
            builds.append(time.perf_counter() - start)
        name = label.replace("(", "_").rstrip(")")
        pages[label] = explorer.save_html(out / f"{name}.html")
        small = explorer.save_html(out / f"{name}_int8.html", dtype="int8")
        print(f"{label:30s} {statistics.median(builds):8.2f} {kb(len(explorer.decoder_weights)):>9s} "
              f"{kb(len(explorer.map_png)):>8s} {kb(len(explorer.codes)):>8s} {kb(len(latent.ESM.encode())):>8s} "
              f"{kb(pages[label].stat().st_size):>9s} {kb(small.stat().st_size):>10s}")
    return pages


def kb(n: int) -> str:
    return f"{n / 1e3:,.0f} kB" if n < 1e6 else f"{n / 1e6:.2f} MB"


def press_and_time(page, explorer, css: str, key: str, presses: int, gap_s: float = 0.12) -> tuple[list, int]:
    page.evaluate(PROBE)
    page.evaluate("() => { window.__latency.times = []; window.__latency.misses = 0; }")
    slider = explorer.locator(css)
    slider.scroll_into_view_if_needed()
    slider.focus()
    for i in range(presses):
        page.keyboard.press(key if i < presses // 2 else {"ArrowRight": "ArrowLeft"}.get(key, key))
        time.sleep(gap_s)
    time.sleep(0.5)
    result = page.evaluate("() => window.__latency")
    return result["times"], result["misses"]


def browser_side(data, models, pages: dict[str, Path], presses: int, epochs: int, busy_seconds: int):
    import nbformat
    from playwright.sync_api import expect, sync_playwright

    results: dict[tuple[str, str], tuple[list, int]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=labserver.CHROMIUM, args=labserver.CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        page = context.new_page()

        page.goto("about:blank")
        spec, weights = packing.pack_decoder(models["cvae"])
        times = page.evaluate(DECODE_TIME, [latent.ESM, spec, base64.b64encode(weights).decode()])
        print(f"\nexplorer.js, one decode of the CVAE (2+10 -> 256 -> 512 -> 784), median / p95 of 300: "
              f"{ms(times)} ms (timer resolution 0.1 ms)")

        with tempfile.TemporaryDirectory() as tmp, labserver.jupyterlab(Path(tmp), {"OMP_NUM_THREADS": "1"}) as lab:
            nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
                src.format(epochs=epochs, busy_seconds=busy_seconds)) for src in NOTEBOOK])
            nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
            nbformat.write(nb, lab.root / "latency.ipynb")
            labserver.run_all(page, lab, "latency.ipynb")
            explorers = page.locator(".aelib-explorer[data-ready=true]")
            expect(explorers).to_have_count(len(EXPLORERS), timeout=120_000)
            status = page.locator("#jp-main-statusbar")
            for phase in ("busy", "idle", "no kernel"):
                if phase == "busy":
                    expect(page.locator(".jp-OutputArea-output pre", has_text="training while you explore")
                           ).to_be_visible(timeout=120_000)
                elif phase == "idle":
                    expect(status.get_by_text("Idle")).to_be_visible(timeout=(busy_seconds + 120) * 1000)
                else:
                    labserver.kernel_menu(page, "Shut Down Kernel")
                    expect(status.get_by_text("No Kernel")).to_be_visible(timeout=30_000)
                for i, (label, _, key, css) in enumerate(EXPLORERS):
                    results[(label, phase)] = press_and_time(page, explorers.nth(i), css, key, presses)
                if phase == "busy" and not status.get_by_text("Busy").is_visible():
                    print("warning: the training cell ended before the busy phase did; raise --busy-seconds")

        for label, path in pages.items():
            page.goto(path.as_uri())
            explorer = page.locator(".aelib-explorer[data-ready=true]")
            expect(explorer).to_be_visible(timeout=30_000)
            css, key = next((c, k) for lbl, _, k, c in EXPLORERS if lbl == label)
            results[(label, "saved page")] = press_and_time(page, explorer, css, key, presses)
        browser.close()

    phases = ("idle", "busy", "no kernel", "saved page")
    print(f"\nkey press -> changed pixels, ms, median / p95 of {presses} presses (misses: presses that changed no "
          f"pixel within 2 s); load average {load_average()}")
    rows = []
    for label, *_ in EXPLORERS:
        cells = []
        for phase in phases:
            times, misses = results[(label, phase)]
            cells.append(f"{ms(times)}" + (f" ({misses})" if misses else ""))
        rows.append([f"`{label}`", *cells])
    print(markdown_table(["explorer", "kernel idle", "kernel busy training", "no kernel", "saved page"], rows,
                         "Key press -> changed pixels, median / p95 ms"))
    everything = [t for (times, _) in results.values() for t in times]
    print(f"all presses: median {np.median(everything):.1f} ms, p95 {np.percentile(everything, 95):.1f} ms, "
          f"{len(everything)} presses")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presses", type=int, default=40, help="key presses per explorer and phase (default 40)")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs per model (default 2)")
    parser.add_argument("--busy-seconds", type=int, default=90, help="how long the busy cell trains (default 90)")
    parser.add_argument("--no-browser", action="store_true", help="only the Python side")
    args = parser.parse_args()

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"load average at start {load_average()} (1, 5, 15 min)")
    data, models = train_models(args.epochs)
    with tempfile.TemporaryDirectory() as tmp:
        pages = python_side(data, models, Path(tmp))
        if args.no_browser:
            return
        if labserver.CHROMIUM is None:
            sys.exit("no Chromium: apt-get install chromium (or set AELIB_CHROMIUM), or pass --no-browser")
        browser_side(data, models, pages, args.presses, args.epochs, args.busy_seconds)
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
