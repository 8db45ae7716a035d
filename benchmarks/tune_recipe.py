"""Tune a model's recipe on validation digits carved from the training set (never on a test split).

    python -m benchmarks.tune_recipe vae --latent-dim 20 --epochs 10 --seeds 0 1 --configs 512-256:64:1e-3 1024:32:1e-3

Each config is ``hidden widths joined by '-' : batch size : learning rate``. Trains on the first 3,500 of the 4,000
offline training digits (a fixed random order) and prints, per config and seed, the held-out -ELBO (10 draws of z)
on the last 500, or the reconstruction error for models without an ELBO, and the training seconds (with the load
average: the machine may be shared). The offline test digits and the official test split are never read.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import aelib
from aelib.data import load_offline
from benchmarks.machine import markdown_table

VALIDATION = 500


def score(model, x, y) -> float:
    """Validation nats per image: -ELBO for a VAE/CVAE (10 draws), else the reconstruction error."""
    torch.manual_seed(123)
    y = y if model.uses_labels else None
    if model.variational:
        return -aelib.evaluate.elbo(model, x, y, samples=10).mean().item()
    return aelib.evaluate.reconstruction_error(model, x, y).mean().item()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", choices=list(aelib.MODELS))
    p.add_argument("--latent-dim", type=int, default=2)
    p.add_argument("--epochs", type=int, default=None, help="default: the model's recipe")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--configs", nargs="+", required=True, help="e.g. 512-256:64:1e-3 1024:32:1e-3")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default 1: comparable timings)")
    args = p.parse_args()
    aelib.use_threads(args.threads)

    data = load_offline()
    n = len(data.train_x) - VALIDATION
    train = (data.train_x[:n], data.train_y[:n])
    x_val, y_val = data.train_x[n:], data.train_y[n:]
    print(f"{args.model}, latent_dim {args.latent_dim}, {args.epochs or 'recipe'} epochs; train {n:,} / validation "
          f"{VALIDATION} of the offline training digits; load average {os.getloadavg()[0]:.1f}")
    print(f"{'hidden':>12s} {'batch':>5s} {'lr':>7s}  " + " ".join(f"seed {s:<3d}" for s in args.seeds)
          + "     mean  seconds")
    table = []
    for config in args.configs:
        widths, batch, lr = config.split(":")
        hidden = tuple(int(w) for w in widths.split("-"))
        scores, seconds = [], []
        for seed in args.seeds:
            model = aelib.build(args.model, seed=seed, latent_dim=args.latent_dim, hidden_dims=hidden)
            start = time.perf_counter()
            aelib.fit(model, train, epochs=args.epochs, seed=seed, batch_size=int(batch), lr=float(lr), progress=False)
            seconds.append(time.perf_counter() - start)
            scores.append(score(model, x_val, y_val))
        print(f"{widths:>12s} {int(batch):5d} {float(lr):7.0e}  " + " ".join(f"{v:8.2f}" for v in scores)
              + f" {statistics.mean(scores):8.2f} {statistics.median(seconds):8.1f}", flush=True)
        table.append([widths, batch, lr, f"{statistics.mean(scores):.1f}", f"{statistics.median(seconds):.1f}"])
    print("\n" + markdown_table(["hidden", "batch", "lr", "validation nats (mean of seeds)", "seconds"], table,
                                f"{args.model}, latent_dim {args.latent_dim}, seeds {args.seeds}"))


if __name__ == "__main__":
    main()
