"""The package is shaped as it reads: a flat core, then ``course/``, ``explorers/`` and ``site/`` on top, the CLI last.
Dependencies point one way (no import cycles, not even lazy ones), ``recipes`` is a leaf, no file is long, and
``import aelib`` loads nothing above the core."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "aelib"
LAYERS = ["core", "course", "explorers", "site", "cli"]   # each may import only from its own layer and those before
MAX_LINES = 450


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("course", "explorers", "site"):
        return parts[1]
    return "cli" if parts[-1] in ("cli", "__main__") else "core"


def imports(module: str) -> set[str]:
    """The aelib modules ``module`` imports anywhere in it (inside functions too), as full names."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("aelib"):
                continue
            for alias in node.names:   # `from . import x` names a module; `from .x import y` a name in x
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "aelib")
    return {m for m in found if m in MODULES} - {module}


GRAPH = {m: imports(m) for m in MODULES}


def test_the_import_finder_sees_every_form():
    assert {"aelib.explorers.packing", "aelib.explorers.page", "aelib.course.plotting", "aelib.errors"} <= \
        GRAPH["aelib.explorers.latent"]
    assert "aelib.models" in GRAPH["aelib.course.elbo_lab"]          # from ..models import ...
    assert "aelib.course.figures" in GRAPH["aelib.cli"]              # imported inside a function
    assert "aelib.losses" in GRAPH["aelib"]                          # from . import evaluate, losses, priors


def test_no_import_cycles():
    done, path = set(), []

    def visit(module):
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(module):] + [module]))
        if module in done:
            return
        path.append(module)
        for other in sorted(GRAPH[module]):
            visit(other)
        path.pop()
        done.add(module)

    for module in sorted(GRAPH):
        visit(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_dependencies_point_one_way(module):
    mine = LAYERS.index(layer(module))
    above = sorted(m for m in GRAPH[module] if m != "aelib" and LAYERS.index(layer(m)) > mine)
    assert not above, f"{module} ({layer(module)}) imports {above}, which sit above it"


def test_recipes_is_a_leaf():
    assert GRAPH["aelib.recipes"] <= {"aelib.errors"}


@pytest.mark.parametrize("path", sorted(p for p in PACKAGE.rglob("*") if p.suffix in (".py", ".js", ".css")),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_file_is_long(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES, f"{path.name}: split it (one job per file)"


def test_import_aelib_loads_nothing_above_the_core():
    code = ("import sys, aelib\n"
            "aelib.build('vae'); aelib.recipes.recipe('vae')\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'ipywidgets', 'anywidget', "
            "'nbformat', 'nbconvert', 'IPython') or m.split('.')[:2] in (['aelib', 'course'], ['aelib', 'explorers'], "
            "['aelib', 'site'], ['aelib', 'cli']))\n"
            "assert not loaded, loaded\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_former_module_names_still_work():
    """Notebooks and code written before the package had folders keep working."""
    import aelib
    from aelib.course import architecture, elbo_lab, notebook
    from aelib.explorers import posterior

    assert aelib.widgets.latent_explorer is aelib.explorers.latent_explorer
    assert aelib.posterior_widget is posterior
    assert (aelib.notebook, aelib.diagrams, aelib.elbo) == (notebook, architecture, elbo_lab)
