"""Training speed on the CPU: aelib's in-memory batches against the classic torchvision DataLoader pipeline.

For each model (ae, vae, cvae, aae, caae), same architecture and batch size, it measures training samples/s of

1. aelib:      ``aelib.fit(model, (x, y), epochs=E, batch_size=B, progress=False)``, batches sliced from tensors;
2. DataLoader: ``torchvision.datasets.MNIST(root, transform=ToTensor())`` + ``DataLoader(batch_size=B, shuffle=True)``
               feeding ``model.training_step(x, y, model.configure_optimizers(lr))``, which is what fit runs per batch.

The data are the 4,000 offline training digits (``aelib.data.load_offline()``), repeated to make an epoch long
enough to time; for the DataLoader they are written in torchvision's raw MNIST layout to a temporary directory, so
both pipelines see the same samples. For aelib it also reports the matmul GFLOP/s reached and its share of the
float32 matmul peak measured here (a 2048x2048 @ 2048x2048 product, best of a few, same thread count).

Run:  python -m benchmarks.train_speed [--models vae,aae] [--batch-size 128] [--latent-dim 20] [--hidden-dims 400]
                                       [--epochs 1] [--repeat 5] [--trials 2]
                                       [--threads 2] [--workers 0]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch
import torch.nn as nn
import torchvision
from torch.utils.data import DataLoader

import aelib
from aelib.cli import parse_widths  # the command line's parser of "512,256"
from aelib.data import MNIST, load_offline, write_mnist_raw
from benchmarks.machine import cpu_name, markdown_table

LR = 1e-3


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default=",".join(aelib.MODELS), help="comma list (default: all five)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--latent-dim", type=int, default=20)
    p.add_argument("--hidden-dims", type=parse_widths, default=(400,),
                   help="comma list of encoder widths, e.g. 512,256")
    p.add_argument("--epochs", type=int, default=1, help="epochs per timed run (of the repeated data)")
    p.add_argument("--repeat", type=int, default=5, help="repeat the 4,000 digits this many times per epoch")
    p.add_argument("--trials", type=int, default=2, help="timed runs per pipeline; the fastest is reported")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: aelib's policy, "
                   "aelib.use_threads(); the README's table: --threads 2, torch's own choice here)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader num_workers")
    return p.parse_args()


def matmul_peak(n: int = 2048, reps: int = 5) -> float:
    """FLOP/s of the best of ``reps`` float32 (n x n) @ (n x n) products (2 n^3 FLOPs each)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


def step_flops(model: aelib.AE, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    """Matmul FLOPs and nn.Linear calls of one ``training_step`` on the batch (x, y), counted with forward hooks.

    Forward: 2*in*out per row for every Linear call that runs (the AAE's three phases call some layers twice).
    Backward: every Linear output in these steps feeds a loss that is backpropagated, so a call whose output
    requires grad is differentiated: the weight gradient costs the forward's FLOPs again if the weight requires
    grad (true for every layer, also the discriminator's in the AAE generator phase: autograd computes those
    gradients although only the encoder is stepped), and the input gradient costs them once more only if the
    layer's input requires grad, which is false for a network's first layer on pixels, on prior samples or on
    z.detach(). Bias gradients, activations, losses and Adam are not matmuls and are left out.
    """
    flops = calls = 0

    def hook(layer, inputs, output):
        nonlocal flops, calls
        forward = 2 * inputs[0].shape[0] * layer.in_features * layer.out_features
        calls += 1
        flops += forward
        if output.requires_grad:
            flops += forward * (int(layer.weight.requires_grad) + int(inputs[0].requires_grad))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Linear)]
    try:
        model.train()
        model.training_step(x, y, model.configure_optimizers(LR))
    finally:
        for h in handles:
            h.remove()
    return flops, calls


def build(name: str, args) -> aelib.AE:
    """A fresh model, the same initial weights for each pipeline."""
    torch.manual_seed(0)
    return aelib.build(name, latent_dim=args.latent_dim, hidden_dims=args.hidden_dims)


def best_rate(run, samples: int, trials: int) -> float:
    """Samples/s of the fastest of ``trials`` calls of ``run()`` (the best is the least disturbed by other load)."""
    best = float("inf")
    for _ in range(trials):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return samples / best


def time_aelib(model, x, y, args) -> float:
    aelib.fit(model, (x[:10 * args.batch_size], y[:10 * args.batch_size]), epochs=1,
              batch_size=args.batch_size, progress=False)  # untimed warm-up (the first fit in a process is slow)
    return best_rate(lambda: aelib.fit(model, (x, y), epochs=args.epochs, batch_size=args.batch_size,
                                       progress=False), args.epochs * len(x), args.trials)


def time_dataloader(model, dataset, args) -> float:
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.workers)
    model.train()
    optimizers = model.configure_optimizers(LR)
    for i, (xb, yb) in enumerate(loader):  # untimed warm-up
        model.training_step(xb, yb, optimizers)
        if i == 9:
            break

    def run():
        for _ in range(args.epochs):
            for xb, yb in loader:
                model.training_step(xb, yb, optimizers)  # y is ignored by ae, vae and aae

    return best_rate(run, args.epochs * len(dataset), args.trials)


def main():
    args = parse_args()
    aelib.use_threads(args.threads)   # fit would apply the policy anyway; the matmul peak runs with the same count
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    data = load_offline()
    x, y = data.train_x.repeat(args.repeat, 1, 1, 1), data.train_y.repeat(args.repeat)
    n = args.epochs * len(x)

    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {torch.get_num_threads()} threads, "
          f"CPU: {cpu_name()} ({os.cpu_count()} logical cores), load average {os.getloadavg()[0]:.2f}")
    print(f"data: the {len(data.train_x):,} offline training digits, repeated {args.repeat} times = {len(x):,} per "
          f"epoch, x {args.epochs} epoch(s) = {n:,} samples per timed run, the same for both pipelines; "
          f"best of {args.trials} runs")
    print(f"config: latent_dim={args.latent_dim}, hidden_dims={args.hidden_dims}, batch_size={args.batch_size}, "
          f"DataLoader num_workers={args.workers}")
    peak = matmul_peak()
    print(f"measured float32 matmul peak (2048^3, best of 5): {peak / 1e9:.1f} GFLOP/s\n")

    header = (f"{'model':<6} {'aelib/s':>9} {'DataLoader/s':>13} {'ratio':>6} {'Linear calls':>13} "
              f"{'MFLOP/sample':>13} {'aelib GFLOP/s':>14} {'% peak':>7}")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        write_mnist_raw(tmp, MNIST(x, y, data.test_x, data.test_y, source=f"offline x{args.repeat}"))
        dataset = torchvision.datasets.MNIST(tmp, train=True, download=False,
                                             transform=torchvision.transforms.ToTensor())
        assert len(dataset) == len(x)
        table = []
        for name in names:
            flops, calls = step_flops(build(name, args), x[:args.batch_size], y[:args.batch_size])
            per_sample = flops / args.batch_size
            fast = time_aelib(build(name, args), x, y, args)
            slow = time_dataloader(build(name, args), dataset, args)
            achieved = per_sample * fast
            print(f"{name:<6} {fast:>9,.0f} {slow:>13,.0f} {fast / slow:>5.1f}x {calls:>13} "
                  f"{per_sample / 1e6:>13.2f} {achieved / 1e9:>14.1f} {100 * achieved / peak:>6.1f}%", flush=True)
            table.append([name, f"{fast:,.0f}", f"{slow:,.0f}", f"{fast / slow:.1f}x"])
    print("\n" + markdown_table(["model", "aelib samples/s", "DataLoader + ToTensor samples/s", "ratio"], table,
                                "Training speed"))
    print("\nratio = aelib samples/s / DataLoader samples/s; MFLOP/sample = matmul FLOPs of one training step "
          "(forward + backward, all phases) per image; % peak = aelib GFLOP/s / measured matmul peak.")


if __name__ == "__main__":
    main()
