import os
import shutil
import subprocess
import tempfile

import pytest
import torch

import aelib


@pytest.fixture(scope="session")
def offline_data():
    """The 5,000 offline digits (no network, no ../shared): what a test may train on."""
    return aelib.data.load_offline()


@pytest.fixture
def tiny_mnist_root(tmp_path, offline_data):
    """A folder in torchvision's layout (<root>/MNIST/raw/*-ubyte) holding a few hundred real digits."""
    small = aelib.MNIST(offline_data.train_x[:300], offline_data.train_y[:300], offline_data.test_x[:100],
                        offline_data.test_y[:100], source="test")
    aelib.data.write_mnist_raw(tmp_path, small)
    return tmp_path


def _can_write(folder) -> bool:
    try:
        fd, name = tempfile.mkstemp(dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


@pytest.fixture
def read_only_dir(tmp_path):
    """An empty folder in which no file can be created: chmod 555, and for root (who ignores it) chattr +i."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = (_can_write(folder) and shutil.which("chattr") is not None
                 and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0)
    try:
        if _can_write(folder):
            pytest.skip("cannot make a read-only folder here (running as root without chattr)")
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
        folder.chmod(0o755)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --- the browser tests (pytest-playwright): Debian's Chromium, never a downloaded one ------------------------------
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright launches the Debian Chromium (tools/labserver.py finds it), never a downloaded one."""
    from tools import labserver

    return {**browser_type_launch_args, "executable_path": labserver.CHROMIUM,
            "args": [*browser_type_launch_args.get("args", []), *labserver.CHROMIUM_ARGS]}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 1000}, "device_scale_factor": 1}


# --- `python -m pytest -m "not slow"`: the fast loop --------------------------------------------------------------
SLOW_FILES = {"test_browser.py", "test_site.py", "test_notebooks.py", "test_figures.py", "test_install.py"}


def pytest_collection_modifyitems(config, items):
    """Browser tests, the site, the notebooks (nbval) and whole-install tests are slow; so is any test marked so."""
    for item in items:
        if item.path.name in SLOW_FILES or item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
