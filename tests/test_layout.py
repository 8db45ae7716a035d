"""The core (models, losses, data, training, evaluation) reads on its own: it never imports the course's modules
(notebook setup, the ELBO lab, plotting, widgets, the website), and `import aelib` loads none of them."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "aelib"
CORE = {"__init__", "models", "priors", "losses", "recipes", "train", "data", "checkpoints", "evaluate", "metrics",
        "classifier", "checks", "errors", "files"}
COURSE = {p.stem for p in PACKAGE.glob("*.py")} - CORE


def aelib_imports(path: Path) -> set[str]:
    """The aelib modules ``path`` imports anywhere in it (also inside functions): ``from .x import``,
    ``from . import x``, ``import aelib.x``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1 or node.module == "aelib":
                found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("aelib."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("aelib."))
    return found


def test_the_split_names_every_module():
    assert CORE <= {p.stem for p in PACKAGE.glob("*.py")}
    assert {"notebook", "elbo", "plotting", "widgets", "site"} <= COURSE


@pytest.mark.parametrize("module", sorted(CORE))
def test_the_core_never_imports_the_course(module):
    assert not aelib_imports(PACKAGE / f"{module}.py") & COURSE


def test_the_import_finder_sees_every_form(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("from .plotting import x\nfrom . import widgets, data\nimport aelib.site\n"
                      "def f():\n    from aelib import notebook\n    from aelib.elbo import y\n")
    assert aelib_imports(source) == {"plotting", "widgets", "data", "site", "notebook", "elbo"}


def test_import_aelib_loads_no_course_module_and_no_plotting_library():
    code = ("import sys, aelib\n"
            "aelib.build('vae'); aelib.recipes.recipe('vae')\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'ipywidgets', 'anywidget', "
            "'nbformat', 'IPython') or m.startswith('aelib.') and m.split('.')[1] in sys.argv[1:])\n"
            "assert not loaded, loaded\n")
    result = subprocess.run([sys.executable, "-c", code, *sorted(COURSE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
