"""aelib works as a plain package, outside this repository: built by pip (not editable), imported from elsewhere, with
its ES modules, styles and site template inside it. The dependencies come from the test environment (a fresh torch
would cost minutes and gigabytes), so this checks what the wheel holds, not what pip resolves."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(args, cwd, env):
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def test_pip_install_then_train_and_build_the_site_from_another_folder(tmp_path):
    target, work, source = tmp_path / "installed", tmp_path / "elsewhere", tmp_path / "source"
    work.mkdir()
    source.mkdir()   # a copy, so that the build leaves nothing in the repository
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    shutil.copytree(ROOT / "aelib", source / "aelib", ignore=shutil.ignore_patterns("__pycache__"))
    run(["-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(target),
         str(source)], cwd=tmp_path, env=os.environ)
    env = {**os.environ, "PYTHONPATH": str(target), "AELIB_CACHE": str(tmp_path / "cache")}
    where = run(["-c", "import aelib; print(aelib.__file__)"], cwd=work, env=env)
    assert where.startswith(str(target)), f"imported {where} instead of the installed copy"

    out = run(["-m", "aelib", "train", "vae", "--epochs", "1", "--no-progress", "--out", "vae.pt"], cwd=work, env=env)
    assert (work / "vae.pt").is_file(), out

    notebooks = work / "my_notebooks"
    notebooks.mkdir()
    for name in ("00_index.ipynb", "03_vae.ipynb"):   # an index and a notebook with explorers
        shutil.copy(ROOT / "notebooks" / name, notebooks)
    out = run(["-m", "aelib", "site", "--notebooks", "my_notebooks", "--out", "web"], cwd=work, env=env)
    pages = sorted(p.name for p in (work / "web").glob("*.html"))
    assert pages == ["00_index.html", "03_vae.html", "index.html"], out
    page = (work / "web" / "03_vae.html").read_text()
    assert "aelib.explorers.latent.Explorer" in page and "unpackDecoder" in page   # its modules, from the package
