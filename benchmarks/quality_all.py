"""Held-out quality of every model, trained as ``python -m aelib train MODEL`` trains it, in one table.

    python -m benchmarks.quality_all [--test-dir ../shared/mnist] [--out checkpoints/quality_all] [--reuse]

Trains, with the command line's defaults (aelib/recipes.py: 20 epochs, the CVAE 60, the CAAE 40; batch 64, the VAE 32;
latent_dim 2, Adam lr 1e-3, seed 0; other options as in RUNS), the ae, vae, cvae, aae (Gaussian prior), aae with the
label-guided mixture prior, and caae on the 4,000 offline training digits (``aelib.data.load_offline()``, whatever the
network offers), saves their checkpoints to ``--out``, trains the digit judge on the same 4,000 digits, and prints the
table of ``python -m aelib evaluate`` on:

* the official MNIST test split (10,000 digits) when ``--test-dir`` holds its t10k IDX files (default
  ../shared/mnist next to the repository): used for evaluation only, never for training or tuning;
* else the 1,000 held-out offline digits.

``--reuse`` skips training a model whose checkpoint is already in ``--out``. Re-evaluate the checkpoints later with
``python -m aelib evaluate checkpoints/quality_all/*.pt --test-dir ../shared/mnist``.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

import aelib
from aelib.cli import fit_from_args, make_parser, model_from_args
from aelib.recipes import default_epochs, recipe
from benchmarks.machine import cpu_name

ROOT = Path(__file__).resolve().parents[1]
RUNS = {  # checkpoint name -> extra command-line options of `python -m aelib train MODEL`
    "ae": ("ae", []),
    "vae": ("vae", []),
    "cvae": ("cvae", []),
    "aae": ("aae", []),
    # notebook 05's recipe: the label-guided encoder is a digit classifier trained on 4,000 digits, and overfits
    "aae_mixture_guided": ("aae", ["--prior", "mixture", "--label-guided", "--dropout", "0.2", "--binarize",
                                   "--shift", "1", "--epochs", "40"]),
    "caae": ("caae", []),
}


def train_like_the_cli(name: str, model_name: str, options: list[str], data, out: Path, seed: int) -> float:
    """Train as `python -m aelib train` would (its parser supplies every default) and save; returns seconds."""
    args = make_parser().parse_args(["train", model_name, *options, "--seed", str(seed), "--no-progress"])
    model = model_from_args(args)
    args.epochs = args.epochs or default_epochs(model_name)
    start = time.perf_counter()
    history = fit_from_args(model, data, args)
    seconds = time.perf_counter() - start
    aelib.save(model, out, history=list(history), data_source=data.source)
    batch, lr = args.batch_size or recipe(model_name).batch_size, args.lr or recipe(model_name).lr
    print(f"  {name:20s} {args.epochs} epochs, batch {batch}, lr {lr}: {seconds:6.1f} s -> {out}",
          flush=True)
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--test-dir", type=Path, default=ROOT.parent / "shared" / "mnist")
    parser.add_argument("--out", type=Path, default=ROOT / "checkpoints" / "quality_all")
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=100, help="importance samples for the NLL (default 100)")
    parser.add_argument("--per-digit", type=int, default=500, help="generated digits per label (default 500)")
    parser.add_argument("--reuse", action="store_true", help="keep checkpoints already in --out")
    args = parser.parse_args()

    data = aelib.data.load_offline()
    has_official = any((args.test_dir / f"t10k-images-idx3-ubyte{ext}").exists() for ext in ("", ".gz"))
    if has_official:
        test_x, test_y = aelib.load_test_split(args.test_dir)
        split = f"official MNIST test split ({args.test_dir})"
    else:
        test_x, test_y = data.test_x, data.test_y
        split = "the 1,000 held-out offline digits"
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; torch {torch.__version__}, {torch.get_num_threads()} "
          f"thread(s), device {aelib.pick_device()}")
    print(f"training split: {data.source}, {len(data.train_x):,} digits (models and judge)")
    print(f"test split: {split}, {len(test_x):,} digits\n")

    print("training:")
    paths = {}
    for name in args.runs:
        model_name, options = RUNS[name]
        out = args.out / f"{name}.pt"
        if args.reuse and out.is_file():
            print(f"  {name:20s} reusing {out}")
        else:
            train_like_the_cli(name, model_name, options, data, out, args.seed)
        paths[name] = out

    start = time.perf_counter()
    judge = aelib.classifier.get_judge(data, cache=ROOT / ".aelib_cache")
    print(f"\njudge: a small CNN trained on the {len(data.train_x):,} training digits; "
          f"{judge.test_accuracy:.1%} on the 1,000 held-out offline digits, "
          f"{judge.accuracy(test_x, test_y):.1%} on this test split ({time.perf_counter() - start:.1f} s)")
    rows = []
    for name, path in paths.items():
        model = aelib.load(path)
        start = time.perf_counter()
        metrics = aelib.evaluate.held_out(model, test_x, test_y, judge=judge, k=args.k, n_per_digit=args.per_digit,
                                          seed=args.seed)
        print(f"  evaluated {name} in {time.perf_counter() - start:.1f} s", flush=True)
        rows.append((name, aelib.evaluate.describe(model), metrics))
    print(f"\nheld-out metrics on {split}, {len(test_x):,} digits (nats per image for -ELBO, NLL k={args.k}, recon; "
          f"cond acc from {args.per_digit} generated digits per label):\n")
    print(aelib.evaluate.format_table(rows))


if __name__ == "__main__":
    main()
