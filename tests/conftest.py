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


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
