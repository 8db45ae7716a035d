"""JupyterLab and Chromium for the browser tests and the latency benchmark (shared by both).

    with jupyterlab(base_dir, env={"AELIB_QUICK": "1"}) as lab:    # a server on 127.0.0.1 with a random token
        page.goto(lab.notebook_url("03_vae.ipynb"))

The server gets its own config, runtime, workspace and data folders under ``base_dir`` (nothing of the user's
JupyterLab leaks in, and the news toast is off) and serves ``base_dir/root``. Chromium is the Debian package
(``apt-get install chromium``); never ``playwright install``, which downloads a browser and fails offline.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = os.environ.get("AELIB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]   # without the network flags Chromium hangs on a closed network
START_TIMEOUT = 60   # seconds


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?reset&token={self.token}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyterlab(base: Path, env: dict[str, str | None] | None = None):
    """A JupyterLab server serving ``base/root``; ``env`` adds (or, with None, removes) environment variables."""
    root, config = base / "root", base / "config"
    root.mkdir(parents=True, exist_ok=True)
    (config / "labconfig").mkdir(parents=True, exist_ok=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))   # no news toast
    port, token = free_port(), secrets.token_hex(16)
    full_env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config), JUPYTER_RUNTIME_DIR=str(base / "runtime"),
                    JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"), JUPYTER_DATA_DIR=str(base / "data"))
    full_env.pop("MPLBACKEND", None)     # the kernel uses the notebook's inline backend, as for a student
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    log = base / "jupyterlab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}",
           "--ServerApp.port_retries=0", "--ip=127.0.0.1", f"--ServerApp.token={token}",
           f"--ServerApp.root_dir={root}", "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    with open(log, "wb") as out:
        server = subprocess.Popen(cmd, cwd=root, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"{lab.url}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not start (exit code {server.poll()}):\n{lab.tail()}")
            time.sleep(0.3)
        yield lab
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def run_all(page, lab: Lab, name: str, explorer_css: str = ".aelib-explorer", timeout_ms: int = 240_000):
    """Open notebook ``name``, Run All Cells, and return the locator of its first explorer once it has drawn."""
    from playwright.sync_api import expect

    console: list[str] = []   # the browser's errors, for the message if the explorer never draws
    page.on("console", lambda msg: console.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda err: console.append(str(err)))
    page.goto(lab.notebook_url(name))
    expect(page.locator("#jp-main-statusbar").get_by_text("Idle")).to_be_visible(timeout=90_000)
    page.locator(".lm-MenuBar-itemLabel").get_by_text("Run", exact=True).click()
    page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()
    explorer = page.locator(f"{explorer_css}[data-ready=true]").first
    error = page.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']", has_text="Traceback")
    try:
        expect(explorer.or_(error).first).to_be_visible(timeout=timeout_ms)
    except AssertionError as err:
        raise AssertionError(f"no explorer of {name} drew within {timeout_ms / 1000:.0f} s; browser errors: "
                             f"{console[-10:]}") from err
    if error.count():
        raise AssertionError(f"a cell of {name} failed:\n" + "\n".join(error.all_inner_texts())[-3000:])
    explorer.scroll_into_view_if_needed()
    return explorer


def kernel_menu(page, item: str):
    page.locator(".lm-MenuBar-itemLabel").get_by_text("Kernel", exact=True).click()
    page.locator(".lm-Menu-itemLabel").get_by_text(item, exact=True).click()
