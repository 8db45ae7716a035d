r"""A small digit classifier, used as the *judge* of generated digits.

Conditional models (CVAE, CAAE, a label-guided AAE) promise "ask for a 7, get a 7". To turn that promise into a
number we need someone to read the digits: a small CNN trained on the same training split as the models. Its own
accuracy on the test split is reported next to every number it produces: a judge that is right 97% of the time
cannot certify a generator beyond that.

    judge = aelib.classifier.get_judge(data)    # trains in ~5-10 s on a CPU the first time, then loads from cache
    judge.test_accuracy                         # its accuracy on data.test_x
    judge.predict(images)                       # digits 0..9, shape (N,)

The trained judge is cached in ``.aelib_cache/`` (or ``$AELIB_CACHE``; never committed), keyed by the data source
and a hash of the training labels and images, so a different dataset trains a new judge.
"""
from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checks import check_images, check_labels
from .data import random_shift
from .errors import AelibError
from .files import atomic_write, why_not_writable
from .networks import evaluating
from .train import scaled_epochs

CACHE_ENV = "AELIB_CACHE"
DEFAULT_CACHE = ".aelib_cache"
FORMAT = "aelib-judge"
VERSION = 1            # bump when the architecture or the recipe changes: old cache files are then retrained
EPOCHS = 12            # on the 4,000 offline digits; a larger training set gets fewer (see judge_epochs)
BATCH_SIZE = 64
LR = 2e-3
MAX_SHIFT = 2          # augmentation: each training image is shifted by up to 2 pixels in x and y
SEED = 0
PREDICT_BATCH = 1000


class DigitClassifier(nn.Module):
    """conv(1->16, 5x5, stride 2) -> conv(16->32, 3x3, stride 2) -> linear(1568->64) -> linear(64->10), ReLUs.

    Strided convolutions instead of pooling keep it cheap: 12 epochs on 4,000 digits take ~5 s of one CPU core, and
    on a larger training set it trains for fewer epochs (:func:`judge_epochs`).
    """

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 5, stride=2, padding=2), nn.ReLU(),     # 16 x 14 x 14
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),    # 32 x 7 x 7
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Dropout(0.25),
                                  nn.Linear(64, 10))
        self.test_accuracy: float | None = None   # set by train_judge / get_judge
        self.key: str | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape (N, 10)."""
        return self.head(self.features(x))

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities, shape (N, 10), in eval mode without gradients."""
        x = check_images(x)
        device = next(self.parameters()).device
        with evaluating(self):
            out = [F.softmax(self(x[i:i + PREDICT_BATCH].to(device)), dim=1).cpu()
                   for i in range(0, len(x), PREDICT_BATCH)]
        return torch.cat(out) if out else torch.zeros(0, 10)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The digit (0..9) the judge reads in each image, shape (N,)."""
        return self.predict_proba(x).argmax(dim=1)

    def accuracy(self, x: torch.Tensor, y) -> float:
        """Fraction of ``x`` classified as ``y``."""
        y = check_labels(y, len(check_images(x)))
        return (self.predict(x) == y.cpu()).float().mean().item() if len(y) else float("nan")


def judge_epochs(n_train: int) -> int:
    """Epochs for a judge trained on ``n_train`` digits: 12 on the offline 4,000, 2 on full MNIST's 60,000."""
    return scaled_epochs(EPOCHS, n_train, minimum=2)


def train_judge(train_x: torch.Tensor, train_y: torch.Tensor, epochs: int | None = None,
                seed: int = SEED, test_x: torch.Tensor | None = None, test_y: torch.Tensor | None = None,
                verbose: bool = False) -> DigitClassifier:
    """A new :class:`DigitClassifier` trained on (train_x, train_y) with Adam, shift augmentation and a learning rate
    that decays to zero; ``test_accuracy`` is set when a test split is given."""
    train_x = check_images(train_x).float()
    train_y = check_labels(train_y, len(train_x))
    epochs = epochs or judge_epochs(len(train_x))
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DigitClassifier()
        optimizer = torch.optim.Adam(model.parameters(), lr=LR)
        steps = epochs * -(-len(train_x) // BATCH_SIZE)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=LR, total_steps=steps, pct_start=0.15)
        model.train()
        start = time.perf_counter()
        for _ in range(epochs):
            order = torch.randperm(len(train_x), generator=generator)
            for i in range(0, len(order), BATCH_SIZE):
                index = order[i:i + BATCH_SIZE]
                xb = random_shift(train_x[index], MAX_SHIFT, generator)
                loss = F.cross_entropy(model(xb), train_y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
        model.eval()
    if test_x is not None and test_y is not None:
        model.test_accuracy = model.accuracy(test_x, test_y)
    if verbose:
        acc = f"; test accuracy {model.test_accuracy:.2%}" if model.test_accuracy is not None else ""
        print(f"aelib: trained the digit judge on {len(train_x):,} digits in {time.perf_counter() - start:.1f} s{acc}",
              file=sys.stderr)
    return model


def data_key(data) -> str:
    """A short hash of what the judge is trained on: the data source, the training labels and images, the recipe."""
    h = hashlib.sha256()
    h.update(f"{FORMAT} v{VERSION} epochs={judge_epochs(len(data.train_x))} seed={SEED} | {data.source} | "
             f"{tuple(data.train_x.shape)}".encode())
    h.update(data.train_y.to(torch.int64).contiguous().numpy().tobytes())
    h.update((data.train_x[:, :, ::4, ::4] * 255).round().to(torch.uint8).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def cache_dir(folder: str | os.PathLike | None = None) -> Path:
    """Where trained judges are kept: ``folder``, else ``$AELIB_CACHE``, else ``./.aelib_cache``."""
    return Path(folder or os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def get_judge(data, cache: str | os.PathLike | None = None, verbose: bool = True,
              retrain: bool = False) -> DigitClassifier:
    """The judge for ``data`` (an :class:`aelib.MNIST`): trained on ``data.train_x``, scored on ``data.test_x``.

    Loaded from ``cache_dir(cache)/judge-<key>.pt`` when a judge for the same data was trained before, else trained
    (well under a minute on a CPU) and saved there. A damaged cache file is retrained, never trusted.
    """
    for name in ("train_x", "train_y", "test_x", "test_y", "source"):
        if not hasattr(data, name):
            raise AelibError(f"get_judge needs an MNIST object from aelib.load_mnist(), got {type(data).__name__}")
    key = data_key(data)
    path = cache_dir(cache) / f"judge-{key}.pt"
    if path.is_file() and not retrain:
        model = _load(path, key)
        if model is not None:
            if verbose:
                print(f"aelib: the digit judge is loaded from the cache {path}", file=sys.stderr)
            return model
    model = train_judge(data.train_x, data.train_y, test_x=data.test_x, test_y=data.test_y, verbose=verbose)
    model.key = key
    problem = _save(model, path, source=data.source)
    if problem:      # said even when not verbose: every evaluation will retrain until it is fixed
        print(f"aelib: the digit judge is not cached, so it is retrained each time: {problem}; set ${CACHE_ENV} to "
              "a folder you can write to", file=sys.stderr)
    elif verbose:
        print(f"aelib: the digit judge is cached in {path}", file=sys.stderr)
    return model


def _save(model: DigitClassifier, path: Path, source: str) -> str | None:
    """Cache the judge at ``path``; None if that worked, else why not. A cache that cannot be written (a read-only
    folder, a file in the way) only costs a retrain next time, never an error."""
    problem = why_not_writable(path.parent)
    if problem:
        return problem
    payload = {"format": FORMAT, "version": VERSION, "key": model.key, "source": source,
               "test_accuracy": model.test_accuracy, "state_dict": model.state_dict()}
    try:
        atomic_write(path, lambda f: torch.save(payload, f))
    except OSError as err:
        return f"writing {path} failed ({err.strerror or err})"
    return None


def _load(path: Path, key: str) -> DigitClassifier | None:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("format") != FORMAT or payload.get("version") != VERSION or payload.get("key") != key:
            return None
        with torch.random.fork_rng(devices=[]):   # loading must not consume random numbers, as training doesn't
            model = DigitClassifier()
        model.load_state_dict(payload["state_dict"])
    except Exception:  # noqa: BLE001 (a damaged or foreign cache file is retrained)
        return None
    model.eval()
    model.test_accuracy = payload.get("test_accuracy")
    model.key = key
    return model
