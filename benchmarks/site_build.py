"""How long the course website takes to build, how big it is, and how fast each page is ready in a browser.

    python -m benchmarks.site_build                # builds into a temporary folder
    python -m benchmarks.site_build --out site     # ... or into site/

Build: the wall time of ``aelib.site.build`` (the import of aelib, nbconvert and torch is printed apart).
Size: every file of the site, and per page its HTML (figures and explorer weights are inline).
Load: each page served by http.server on 127.0.0.1 and opened in headless Chromium (Debian's; never
``playwright install``) with every request to another host aborted; the time from navigation start until the
document has loaded (so every MathML formula is laid out: MathML needs no script) and every explorer has painted
(``.aelib-explorer[data-ready=true]``), polled each animation frame. ``--repeats`` loads per page, median printed,
each in a fresh browser context (nothing cached). Quote it with the load average printed at the end: the machine is
shared.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

READY = """(n) => document.readyState === "complete"
  && document.querySelectorAll(".aelib-explorer[data-ready=true]").length >= n ? performance.now() : false"""


def load_times(site, repeats: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    from aelib.site import serve
    from tools import labserver

    times = {name: [] for name in site.pages}
    with serve(site.out) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=labserver.CHROMIUM, args=labserver.CHROMIUM_ARGS)
        for _ in range(repeats):
            for name in site.pages:
                context = browser.new_context(viewport={"width": 1280, "height": 1000})
                page = context.new_page()
                page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(url + "/") else r.abort())
                page.goto(f"{url}/{name}", wait_until="commit")
                ready = page.wait_for_function(READY, arg=site.explorers[name], polling="raf", timeout=60_000)
                times[name].append(ready.json_value())
                context.close()
        browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="build here (default: a temporary folder)")
    parser.add_argument("--repeats", type=int, default=3, help="loads per page (default 3)")
    parser.add_argument("--no-browser", action="store_true", help="build and size only")
    args = parser.parse_args()

    start = time.perf_counter()
    from aelib import site as site_module
    imported = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        site = site_module.build(args.out or Path(tmp) / "site")
        mb = lambda files: sum(f.stat().st_size for f in files) / 1e6  # noqa: E731
        print(f"build: {site.seconds:.1f} s for {len(site.pages)} pages (+ {imported:.1f} s importing aelib, "
              f"nbconvert, torch)")
        print(f"size: {site.size / 1e6:.1f} MB in all: pages {mb(site.out / n for n in site.pages):.1f} MB, "
              f"the .ipynb to download {mb((site.out / 'notebooks').iterdir()):.1f} MB, "
              f"static/site.css {mb([site.out / 'static' / 'site.css']) * 1e3:.0f} kB")
        times = {} if args.no_browser else load_times(site, args.repeats)
        print(f"\n| page | HTML | explorers | ready (median of {args.repeats}, ms) |\n| --- | ---: | ---: | ---: |")
        for name in site.pages:
            ready = f"{statistics.median(times[name]):.0f}" if times else "-"
            print(f"| {name} | {(site.out / name).stat().st_size / 1e3:,.0f} kB | {site.explorers[name]} | {ready} |")
    print(f"\nload average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
