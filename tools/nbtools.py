"""Keep the notebooks consistent: navigation links, the index, normalised metadata; and run them.

    python tools/nbtools.py sync            # rewrite nav cells + the index table + metadata (idempotent)
    python tools/nbtools.py check           # exit 1 if sync would change anything (the tests call this)
    python tools/nbtools.py run [NB ...]    # execute notebooks in full mode, in place, then sync them

Notebooks are notebooks/NN_slug.ipynb. Each one's title is the first '# ' heading of its first cell; its goals are
the first paragraph after the title. The last cell of every notebook is a generated navigation cell (tag ``nav``);
00_index holds a generated table of contents (tag ``index``).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat

from aelib import site
from aelib.explorers import stored
from aelib.site import title

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
INDEX = "00_index.ipynb"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def notebooks() -> list[Path]:
    return site.notebooks(NOTEBOOK_DIR)


def goals(nb) -> str:
    text = nb.cells[0].source.split("\n", 1)[1].strip() if "\n" in nb.cells[0].source else ""
    return text.split("\n\n")[0].replace("\n", " ")


def nav_cell_source(paths: list[Path], i: int) -> str:
    parts = []
    if i > 0:
        prev = paths[i - 1]
        parts.append(f"[← {title(_read(prev))}]({prev.name})")
    if paths[i].name != INDEX:
        parts.append(f"[Index]({INDEX})")
    if i + 1 < len(paths):
        nxt = paths[i + 1]
        parts.append(f"[{title(_read(nxt))} →]({nxt.name})")
    return "---\n" + " | ".join(parts)


def index_source(paths: list[Path]) -> str:
    rows = ["| notebook | what you will learn |", "| --- | --- |"]
    for p in paths:
        if p.name == INDEX:
            continue
        nb = _read(p)
        rows.append(f"| [{title(nb)}]({p.name}) | {goals(nb)} |")
    return "\n".join(rows)


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _tagged(nb, tag):
    return [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]


def synced(path: Path, paths: list[Path]) -> str:
    """The text the notebook at ``path`` should have."""
    nb = _read(path)
    i = paths.index(path)
    nav = _tagged(nb, "nav")
    if nav:
        nav[0].source = nav_cell_source(paths, i)
    else:
        cell = nbformat.v4.new_markdown_cell(nav_cell_source(paths, i), metadata={"tags": ["nav"]})
        cell.id = "nav"
        nb.cells.append(cell)
    if path.name == INDEX:
        table = _tagged(nb, "index")
        if not table:
            raise ValueError(f"{path.name} needs a markdown cell tagged 'index' for the table of contents")
        table[0].source = index_source(paths)
    saved = nb.metadata.get("widgets")   # the explorers' state: live widgets in static renderings
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    if saved:
        nb.metadata["widgets"] = saved
        stored.compact_widget_state(nb.metadata)   # current explorer.js, int8 weights stored once per decoder
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
        cell.metadata.pop("scrolled", None)
    return nbformat.writes(nb) + "\n"


def sync(check_only: bool = False, only: list[Path] | None = None) -> list[str]:
    """Rewrite every notebook (or those in ``only``) that is not as :func:`synced` says; return their names."""
    paths = notebooks()
    changed = []
    for path in only or paths:
        text = synced(path, paths)
        if path.read_text() != text:
            changed.append(path.name)
            if not check_only:
                _write_atomically(path, text)
    return changed


def _write_atomically(path: Path, text: str) -> None:
    """A failed write (disk full, Ctrl-C) leaves the old notebook whole, never a cut-off one."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def run(names: list[str]) -> None:
    """Execute in full mode (stored outputs are full-mode outputs), keep the widget state, compact it, sync."""
    from nbclient import NotebookClient

    for var in ("CI", "AELIB_QUICK"):
        if os.environ.pop(var, None) is not None:
            print(f"ignoring {var}: stored notebooks are run in full mode")

    targets = [NOTEBOOK_DIR / n for n in names] if names else notebooks()
    for path in targets:
        nb = _read(path)
        start = time.perf_counter()
        NotebookClient(nb, timeout=1800, kernel_name="python3", store_widget_state=True,
                       resources={"metadata": {"path": str(NOTEBOOK_DIR)}}).execute()
        counts = stored.compact_widget_state(nb.metadata)
        tmp = path.with_name(f".{path.name}.tmp")   # a failed run above never touches the stored notebook
        nbformat.write(nb, tmp)
        tmp.replace(path)
        size = path.stat().st_size
        print(f"{path.name}: {time.perf_counter() - start:.0f} s, {size / 1e6:.2f} MB; "
              f"explorers {counts['explorers']} ({counts['shared']} sharing a decoder)")
    sync(only=targets)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    if command == "sync":
        print("rewrote:", ", ".join(sync()) or "nothing")
    elif command == "check":
        stale = sync(check_only=True)
        if stale:
            print("out of date (run `python tools/nbtools.py sync`):", ", ".join(stale))
            return 1
    elif command == "run":
        run(argv[1:])
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
