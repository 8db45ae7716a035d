"""The notebook collection: navigation and index up to date, every notebook executed, small, and collected by nbval."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from aelib.explorers import kinds
from tools import nbtools

ROOT = Path(__file__).resolve().parents[1]

NOTEBOOKS = nbtools.notebooks()
MAX_BYTES = 2_000_000   # each committed notebook, stored widget state included


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no NN_slug.ipynb"
    assert NOTEBOOKS[0].name == nbtools.INDEX


def test_navigation_and_index_are_up_to_date():
    stale = nbtools.sync(check_only=True)
    assert not stale, f"run `python tools/nbtools.py sync`: out of date: {stale}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_executed_and_small(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert path.stat().st_size < MAX_BYTES, f"{path.name} is {path.stat().st_size / 1e6:.2f} MB"
    if code:
        assert all(c["execution_count"] for c in code), f"{path.name} is stored (partly) unexecuted"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


def test_every_notebook_is_collected_by_nbval():
    result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "notebooks"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    collected = {line.split("::")[0] for line in result.stdout.splitlines() if "::" in line}
    missing = [p.name for p in NOTEBOOKS if f"notebooks/{p.name}" not in collected]
    assert not missing, f"nbval did not collect: {missing}\n{result.stdout[-2000:]}"


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_explorers_are_stored_live_and_as_a_picture(path):
    """Each explorer's output (latent, interpolation, style and posterior explorers) keeps a picture (for viewers
    without widgets) and its widget state (for viewers with them), with the current ES module: a decoder's weights
    are stored once per decoder, and every explorer can find them; a posterior explorer has the digit it shows."""
    nb = json.loads(path.read_text())
    state = nb["metadata"].get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    explorers = {k: v for k, v in state.items() if kinds.bootable(v)}   # latent, ..., posterior explorers
    shown = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
             if WIDGET_VIEW in o.get("data", {}) and o["data"][WIDGET_VIEW]["model_id"] in explorers]
    calls = sum(("widgets." in "".join(c["source"]) or "explorers." in "".join(c["source"])) and "_explorer(" in "".join(c["source"])
                for c in nb["cells"] if c["cell_type"] == "code")
    assert len(shown) == calls, f"{path.name}: {calls} explorer cells, {len(shown)} stored explorers"
    for output in shown:
        assert output["data"]["image/png"], "no picture for viewers without widget support"
        assert "children=" not in output["data"]["text/plain"], "a bare widget repr"
    def name(entry):   # what explorer.js looks a decoder up by
        return entry["state"]["decoder_spec"]["key"], entry["state"]["decoder_spec"]["dtype"]

    decoders = {k: v for k, v in explorers.items() if "decoder_spec" in v["state"]}
    with_weights = [name(v) for v in decoders.values()
                    if any(b["path"] == ["decoder_weights"] for b in v.get("buffers", []))]
    for model_id, entry in decoders.items():
        assert name(entry) in with_weights, f"{model_id}: its decoder {name(entry)} is stored nowhere"
    assert len(with_weights) == len(set(with_weights)), "a decoder is stored twice"
    for model_id, entry in explorers.items():
        assert entry["state"]["_esm"] == kinds.BOOTABLE[entry["state"]["_anywidget_id"]], \
            f"{model_id}: stored with an old ES module (run `python tools/nbtools.py sync`)"
        if "entries" in entry["state"]:   # the posterior explorer: the digit shown is one it can draw offline
            shown_index = entry["state"]["index"]
            assert any(e["index"] == shown_index for e in entry["state"]["entries"]), f"{model_id}: digit missing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_outputs_hold_no_failed_claim_and_no_unfinished_progress_bar(path):
    """Every claim check (aelib.notebook.check) stored in a committed notebook held in a full run, and a training
    cell shows its finished bar as text, not the tqdm widget's "0%" fallback."""
    nb = json.loads(path.read_text())
    for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        for output in cell.get("outputs", []):
            text = "".join(output.get("text", "")) + "".join(output.get("data", {}).get("text/plain", ""))
            assert "✗" not in text and "ClaimError" not in text, f"{path.name}, code cell {i}: a failed claim"
            assert " 0%|" not in text, f"{path.name}, code cell {i}: an unfinished progress bar is stored"


def test_sync_writes_a_notebook_whole_or_not_at_all(tmp_path, monkeypatch):
    """A write that fails half way (a full disk, Ctrl-C) leaves the old notebook as it was, and no temporary file."""
    from pathlib import Path as P

    path = tmp_path / "03_x.ipynb"
    path.write_text("the old notebook")

    def fail(self, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(P, "replace", fail)
    with pytest.raises(OSError):
        nbtools._write_atomically(path, "the new notebook")
    assert path.read_text() == "the old notebook" and [p.name for p in tmp_path.iterdir()] == ["03_x.ipynb"]
