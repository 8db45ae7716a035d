"""Training on a busy laptop: torch's default CPU threads against aelib's thread policy, with the machine
otherwise idle and with one core kept busy by another process.

A "busy core" is a second process spinning in a loop (``python -c "while True: pass"``, not pinned: the scheduler
puts it where it likes, as it would a browser tab or a second notebook), started before and stopped after each
measurement. Two workloads, each in fresh processes so that torch starts with its own defaults:

* CLI: ``python -m aelib train vae --epochs E --no-progress`` (the default VAE; E = 2 with --quick, else its default
  20), timed as a whole process (imports, data, training, held-out metrics) and as the training time it prints;
* notebook: ``notebooks/03_vae.ipynb`` executed by nbclient in a fresh kernel (quick mode with --quick, as the tests
  run it; else full mode, as stored), from kernel start to the last cell.

"default" runs with ``AELIB_THREADS=torch`` (torch's own choice: one thread per core), "policy" with no thread
variable (aelib's policy, ``aelib.train.use_threads``). The runs are interleaved: in each round every
(situation, variant) pair runs once, in an order that alternates between rounds. It prints every run and then the
medians with the load average (1 min) seen at their start. Measured figures, not a test: on a shared machine other
work adds its own load, which is printed.

Run:  python -m benchmarks.busy_laptop [--quick] [--rounds 3] [--only cli|notebook]
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.machine import markdown_table

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "03_vae.ipynb"
VARIANTS = {"default": {"AELIB_THREADS": "torch"}, "policy": {}}
SITUATIONS = ("idle", "one core busy")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="2 epochs on the CLI, the notebook in quick mode")
    p.add_argument("--rounds", type=int, default=3, help="runs of each (situation, variant) pair; medians reported")
    p.add_argument("--only", choices=("cli", "notebook"), default=None, help="one workload only")
    return p.parse_args()


def environment(variant: str, quick: bool) -> dict[str, str]:
    """This checkout's aelib, no thread variables but the variant's, quick mode only if asked."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("AELIB_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CI", "AELIB_QUICK")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if quick:
        env["AELIB_QUICK"] = "1"
    return {**env, **VARIANTS[variant]}


def run_cli(variant: str, args, tmp: str) -> tuple[float, float]:
    """Seconds of the whole ``python -m aelib train vae`` process, and of its training as it prints it."""
    command = [sys.executable, "-m", "aelib", "train", "vae", "--no-progress", "--out", f"{tmp}/vae.pt"]
    if args.quick:
        command += ["--epochs", "2"]
    start = time.perf_counter()
    done = subprocess.run(command, env=environment(variant, False), cwd=tmp, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr}")
    trained = re.search(r"trained \d+ epochs in ([\d.]+) s", done.stdout)
    return seconds, float(trained.group(1))


def run_notebook(variant: str, args, tmp: str) -> float:
    """Seconds to execute notebook 03 in a fresh kernel (a copy in ``tmp``; the stored notebook is not touched)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, timeout=3600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    start = time.perf_counter()
    client.execute(env=environment(variant, args.quick))
    seconds = time.perf_counter() - start
    nbformat.write(nb, f"{tmp}/{NOTEBOOK.name}")
    return seconds


def spinner() -> subprocess.Popen:
    """A process that keeps one core busy until it is stopped."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.5)
    return busy


def main():
    args = parse_args()
    import torch

    workloads = [w for w in ("cli", "notebook") if args.only in (None, w)]
    mode = "quick" if args.quick else "full"
    print(f"torch {torch.__version__}, {os.cpu_count()} logical cores, torch's default {torch.get_num_threads()} "
          f"threads; {args.rounds} rounds; CLI: train vae {'--epochs 2' if args.quick else '(20 epochs)'}; "
          f"notebook: {NOTEBOOK.name} in {mode} mode")
    results: dict[tuple, list[float]] = {}
    loads: dict[tuple, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            situations = SITUATIONS if r % 2 == 0 else SITUATIONS[::-1]
            for situation in situations:
                busy = spinner() if situation != "idle" else None
                try:
                    for workload in workloads:
                        variants = list(VARIANTS) if r % 2 == 0 else list(VARIANTS)[::-1]
                        for variant in variants:
                            load = os.getloadavg()[0]
                            if workload == "cli":
                                whole, training = run_cli(variant, args, tmp)
                                figures = {"cli": whole, "cli training": training}
                            else:
                                figures = {"notebook": run_notebook(variant, args, tmp)}
                            for name, seconds in figures.items():
                                results.setdefault((name, situation, variant), []).append(seconds)
                                loads.setdefault((name, situation, variant), []).append(load)
                            shown = ", ".join(f"{k} {v:.1f} s" for k, v in figures.items())
                            print(f"round {r + 1}, {situation}, {variant}: {shown} (load {load:.1f})", flush=True)
                finally:
                    if busy is not None:
                        busy.kill()
                        busy.wait()

    names = [n for n in ("cli", "cli training", "notebook") if any(k[0] == n for k in results)]
    print(f"\nmedian seconds of {args.rounds} runs (load average at the start of the runs, median)")
    header = f"{'':<14}{'variant':<9}{'idle':>16}{'one core busy':>19}{'busy/idle':>11}"
    print(header + "\n" + "-" * len(header))
    for name in names:
        for variant in VARIANTS:
            idle, busy = (statistics.median(results[name, s, variant]) for s in SITUATIONS)
            idle_load, busy_load = (statistics.median(loads[name, s, variant]) for s in SITUATIONS)
            print(f"{name:<14}{variant:<9}{idle:>8.1f} (l {idle_load:.1f}){busy:>11.1f} (l {busy_load:.1f})"
                  f"{busy / idle:>10.1f}x")
        ratio = statistics.median(results[name, "idle", "policy"]) / statistics.median(results[name, "idle",
                                                                                                "default"])
        print(f"{'':<14}policy / default on the idle machine: {ratio:.2f}")
    rows = [[name, *(f"{statistics.median(results[name, s, v]):.1f}" for v in VARIANTS for s in SITUATIONS)]
            for name in names]
    print("\n" + markdown_table(["workload", *(f"{v}: {s}" for v in VARIANTS for s in SITUATIONS)], rows,
                                f"Medians of {args.rounds} runs, seconds"))


if __name__ == "__main__":
    main()
