"""Latency of one slider update in each latent-space explorer (aelib/widgets.py), on the real update path.

    OMP_NUM_THREADS=1 python benchmarks/widget_latency.py [--n 200] [--epochs 2]

Setting a control's value from Python fires the same observer a slider drag fires in JupyterLab: decode one digit
(eval mode, no gradients), stamp the marker onto a copy of the pre-rendered latent map, PNG-encode the images and
assign ``ipywidgets.Image.value`` (which serialises the new state for the front end; outside a kernel the comm
itself is a no-op, so the websocket and the browser's repaint are not included). Each explorer gets ``--n`` updates
with varied values; we print the median and the 95th percentile. Target: median <= 30 ms, aim 15 ms.

The models are small and trained for ``--epochs`` epochs on the 4,000 offline training digits (``--epochs 0``:
untrained; the decode cost does not depend on training, only what the digits look like). For comparison the script
also times what the explorers avoid: re-drawing the latent map with matplotlib on every event.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch

import aelib
from aelib import widgets


def percentile(times: list[float], q: float) -> float:
    return float(np.percentile(np.array(times) * 1000, q))


def time_events(events, n: int) -> list[float]:
    """Apply n (control, value) events in turn; return the seconds each assignment took (observer included)."""
    times = []
    for control, value in events[:n]:
        if control.value == value:   # no change, no event: nudge
            value = value + (control.step or 1) if isinstance(value, float) else value
        start = time.perf_counter()
        control.value = value
        times.append(time.perf_counter() - start)
    return times


def slider_values(rng, slider, n):
    return [float(v) for v in rng.uniform(slider.min, slider.max, n)]


def digit_values(rng, n):
    return [int(v) for v in rng.integers(0, 10, n)]


def interleave(*streams):
    return [event for group in zip(*streams) for event in group]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="updates timed per explorer (default 200)")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs per model; 0 = untrained")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = aelib.data.load_offline()
    load = os.getloadavg()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch thread(s), OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min)")
    models = {}
    for name, config in (("vae", {}), ("cvae", {}), ("aae", {"prior": "mixture"})):
        torch.manual_seed(args.seed)
        model = aelib.build(name, latent_dim=2, **config)
        start = time.perf_counter()
        if args.epochs:
            aelib.fit(model, data, epochs=args.epochs, seed=args.seed, progress=False)
        models[name] = model
        trained = f"trained {args.epochs} epochs in {time.perf_counter() - start:.1f} s" if args.epochs \
            else "untrained"
        print(f"{name}: hidden_dims {model.config.hidden_dims}, {trained}")

    rng = np.random.default_rng(args.seed)
    n = args.n
    rows = []

    def run(label, build, events_of):
        start = time.perf_counter()
        explorer = build()
        built = time.perf_counter() - start
        times = time_events(events_of(explorer), n)
        rows.append((label, built, times))

    run("latent_explorer(vae): z1, z2", lambda: widgets.latent_explorer(models["vae"], data),
        lambda e: interleave([(e.z1, v) for v in slider_values(rng, e.z1, n)],
                             [(e.z2, v) for v in slider_values(rng, e.z2, n)]))
    run("latent_explorer(cvae): z1, digit", lambda: widgets.latent_explorer(models["cvae"], data),
        lambda e: interleave([(e.z1, v) for v in slider_values(rng, e.z1, n)],
                             [(e.digit, v) for v in digit_values(rng, n)]))
    run("latent_explorer(aae, mixture prior): z1, z2", lambda: widgets.latent_explorer(models["aae"], data),
        lambda e: interleave([(e.z1, v) for v in slider_values(rng, e.z1, n)],
                             [(e.z2, v) for v in slider_values(rng, e.z2, n)]))
    run("interpolation_explorer(vae): t", lambda: widgets.interpolation_explorer(models["vae"], data),
        lambda e: [(e.t, float(v)) for v in np.round(rng.uniform(0, 1, n), 2)])
    run("style_explorer(cvae): z1, digit", lambda: widgets.style_explorer(models["cvae"], data),
        lambda e: interleave([(e.z1, v) for v in slider_values(rng, e.z1, n)],
                             [(e.digit, v) for v in digit_values(rng, n)]))

    print(f"\none slider update (decode + composite + PNG encode + Image.value), {n} updates each:")
    print(f"{'explorer':46s} {'build s':>8s} {'median ms':>10s} {'p95 ms':>8s} {'max ms':>8s}")
    for label, built, times in rows:
        print(f"{label:46s} {built:8.2f} {percentile(times, 50):10.2f} {percentile(times, 95):8.2f} "
              f"{percentile(times, 100):8.2f}")

    # Where the time of one latent-explorer update goes.
    explorer = widgets.latent_explorer(models["vae"], data)
    z = explorer.code()
    lmap = explorer.map
    parts = {
        "decode one digit": lambda: widgets.decode_image(models["vae"], z),
        "composite the marker": lambda: lmap.frame(z),
        "PNG-encode the map (palette)": lambda: lmap.png(explorer.last_frame),
        "PNG-encode the map as RGB instead": lambda: widgets.png_bytes(lmap.rgb(explorer.last_frame)),
        "PNG-encode the digit": lambda: widgets.png_bytes(widgets.ink_on_paper(explorer.last_digit)),
        "assign Image.value": lambda: setattr(explorer.map_image, "value", b"x" + bytes(explorer.map_image.value)),
    }
    print("\nparts of one latent_explorer(vae) update (median of 100):")
    for label, fn in parts.items():
        times = []
        for _ in range(100):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        print(f"  {label:36s} {percentile(times, 50):7.2f} ms")

    # What the explorers avoid: a matplotlib redraw of the whole map per event.
    codes, labels = explorer.codes, explorer.labels
    redraws = []
    for _ in range(10):
        start = time.perf_counter()
        widgets.LatentMap(codes, labels, xlim=lmap.xlim, ylim=lmap.ylim)
        redraws.append(time.perf_counter() - start)
    print(f"\nfor comparison, re-drawing the map of {len(codes):,} codes with matplotlib: "
          f"median {statistics.median(redraws) * 1000:.0f} ms per event")
    load = os.getloadavg()
    print(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
