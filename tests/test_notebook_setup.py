"""aelib.course.notebook: quick mode and the training budget that keeps a notebook's run time the same on full MNIST."""
import torch

import aelib
from aelib.course.notebook import BUDGET_TRAIN_SIZE, Setup


def make(quick=False, train_size=BUDGET_TRAIN_SIZE):
    return Setup(seed=0, device=torch.device("cpu"), quick=quick, train_size=train_size)


def test_epochs_on_the_offline_sample_are_as_named_or_a_tenth_in_quick_mode():
    assert [make().epochs(n) for n in (1, 10, 20, 30)] == [1, 10, 20, 30]
    assert [make(quick=True).epochs(n) for n in (1, 10, 20, 30)] == [1, 1, 2, 3]


def test_epochs_shrink_with_a_larger_training_set_so_the_images_seen_stay_about_the_same():
    full = make(train_size=60_000)
    assert [full.epochs(n) for n in (10, 20, 30, 60)] == [1, 1, 2, 4]
    assert make(train_size=8_000).epochs(20) == 10
    assert make(quick=True, train_size=60_000).epochs(30) == 1      # never 0
    assert make(train_size=1_000).epochs(20) == 20                   # a smaller set is not stretched


def test_load_data_sizes_a_larger_mnist_for_a_notebook(tmp_path, offline_data, capsys):
    """8,000 training and 2,000 test digits in torchvision's layout: all training digits are kept (the epochs
    halve), the test split is cut to 100 of each digit."""
    big = aelib.MNIST(offline_data.train_x.repeat(2, 1, 1, 1), offline_data.train_y.repeat(2),
                      offline_data.test_x.repeat(2, 1, 1, 1), offline_data.test_y.repeat(2), source="test")
    aelib.data.write_mnist_raw(tmp_path, big)
    nb = make()
    data = nb.load_data(tmp_path)
    assert len(data.train_x) == 8_000 and nb.train_size == 8_000
    assert torch.bincount(data.test_y, minlength=10).tolist() == [100] * 10
    assert "1,000 of its 2,000 test digits" in data.source
    assert nb.epochs(20) == 10
    assert "scaled by 4,000/8,000" in capsys.readouterr().out
    again = make().load_data(tmp_path)          # the same test digits every time
    assert torch.equal(again.test_x, data.test_x)


def test_load_data_keeps_a_small_test_split_whole(tiny_mnist_root):
    nb = make()
    data = nb.load_data(tiny_mnist_root)
    assert len(data.train_x) == 300 and len(data.test_x) == 100 and nb.epochs(20) == 20


def test_in_a_kernel_figures_are_shown_as_palette_pngs_that_look_the_same(monkeypatch, offline_data):
    """setup() makes IPython show figures as palette PNGs (half the bytes); the picture barely changes."""
    import io
    import types

    import IPython
    import matplotlib
    import numpy as np
    from IPython.core.formatters import PNGFormatter
    from IPython.core.pylabtools import print_figure
    from PIL import Image

    from aelib import plotting

    matplotlib.use("Agg")
    shell = types.SimpleNamespace(display_formatter=types.SimpleNamespace(formatters={"image/png": PNGFormatter()}),
                                  events=types.SimpleNamespace(register=lambda *args: None))   # what pyplot asks of it
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    aelib.notebook.setup()
    fig = plotting.image_grid(offline_data.test_x[:20], ncols=10, title="test digits")
    shown = shell.display_formatter.formatters["image/png"](fig)
    full = print_figure(fig, "png", bbox_inches="tight")
    assert Image.open(io.BytesIO(shown)).mode == "P" and len(shown) < len(full)
    a = np.asarray(Image.open(io.BytesIO(shown)).convert("RGB"), dtype=float)
    b = np.asarray(Image.open(io.BytesIO(full)).convert("RGB"), dtype=float)
    assert a.shape == b.shape and np.abs(a - b).mean() < 1.0 and np.abs(a - b).max() <= 16


def test_check_ticks_a_claim_that_holds_and_stops_a_full_run_on_one_that_does_not(monkeypatch, capsys):
    import pytest

    from aelib.course.notebook import ClaimError, check

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("AELIB_QUICK", "0")
    check(2 > 1, "the rate falls as beta grows")
    assert capsys.readouterr().out == "✓ the rate falls as beta grows\n"
    with pytest.raises(ClaimError, match="the rate falls as beta grows"):
        check(1 > 2, "the rate falls as beta grows")
    monkeypatch.setenv("AELIB_QUICK", "1")        # a quick run reports and goes on
    check(False, "all 8 dimensions stay active")
    out = capsys.readouterr().out
    assert out.startswith("✗ all 8 dimensions stay active") and "quick run" in out


def test_validation_split_holds_out_training_digits_and_never_the_test_digits(offline_data):
    import pytest

    split = offline_data.validation_split(500)
    n = len(offline_data.train_x) - 500
    assert torch.equal(split.train_x, offline_data.train_x[:n])
    assert torch.equal(split.test_x, offline_data.train_x[n:]) and torch.equal(split.test_y, offline_data.train_y[n:])
    assert "validation split" in split.source
    for bad in (0, len(offline_data.train_x), 2.5, True):
        with pytest.raises(aelib.AelibError, match="size must be"):
            offline_data.validation_split(bad)
