"""The notebook collection: navigation and index up to date, every notebook executed, small, and collected by nbval."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import nbtools  # noqa: E402

NOTEBOOKS = nbtools.notebooks()
MAX_BYTES = 1_500_000


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
