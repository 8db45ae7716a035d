"""How many CPU threads torch uses while aelib trains: one per core that other processes leave free.

torch's OpenMP threads meet after every operation, and the steps of these small MLPs are short: when another process
holds one core (a browser, a second notebook), a thread waiting for it stalls every step. So aelib counts the free
cores before training and after every epoch (at least 1, at most torch's own count). The count does not change the
results; ``AELIB_THREADS=n`` (or ``torch``), ``OMP_NUM_THREADS``, ``torch.set_num_threads`` or ``use_threads(n)`` win.
Measurements: docs/results.md, "Training on a busy laptop".
"""
from __future__ import annotations

import os
import time

import torch

from . import checks
from .errors import AelibError

THREADS_VARIABLE = "AELIB_THREADS"   # e.g. AELIB_THREADS=2; "torch" keeps torch's own choice
FREE_CORE_SAMPLE = 0.1   # seconds of /proc/stat watched before training when the last look is older than FRESH
FRESH = 10.0             # seconds
_last_snapshot: tuple[float, float, float] | None = None   # when the policy last looked
_TORCH_START = torch.get_num_threads()   # torch's count when aelib was imported: set by nobody else yet
_chosen: int | None = None               # the count use_threads last set
_explicit = False                        # use_threads(n) was called: the user's choice stands
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_snapshot() -> tuple[float, float, float] | None:
    """(wall seconds, CPU seconds busy on the whole machine, CPU seconds of this process), or None without
    /proc/stat (not Linux)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]   # user nice system idle iowait irq softirq steal
    except (OSError, ValueError):
        return None
    return time.perf_counter(), (sum(ticks) - ticks[3] - ticks[4]) / _CLOCK_TICKS, time.process_time()


def free_cores(since: tuple[float, float, float] | None) -> float | None:
    """Cores that processes other than this one left idle since the snapshot ``since`` (None if unknown)."""
    now = cpu_snapshot()
    if since is None or now is None or now[0] - since[0] < 0.05:
        return None
    others = max(0.0, (now[1] - since[1]) - (now[2] - since[2])) / (now[0] - since[0])
    return (os.cpu_count() or 1) - others


def use_threads(n: int | None = None, device=None, since: tuple[float, float, float] | None = None) -> int:
    """Set how many CPU threads torch uses and return the count now in effect.

    ``use_threads(n)`` sets ``n`` threads for the rest of the session (``fit`` then leaves them alone). Without
    ``n``, aelib's policy (``fit`` applies it before training and after every epoch, ``aelib.course.notebook.setup`` and
    the CLI once): ``$AELIB_THREADS`` if set (a positive whole number, or ``torch`` for torch's own choice); else
    nothing changes if ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` is set or ``torch.set_num_threads`` was called
    after aelib was imported (to a count other than torch's default: to insist on that one, use ``AELIB_THREADS``
    or ``use_threads(n)``); else the cores other processes leave free since ``since`` (a :func:`cpu_snapshot`;
    without one, watched for ``FREE_CORE_SAMPLE`` seconds), at least 1 and at most torch's own count (1 where
    that cannot be measured). On a CUDA or MPS ``device`` nothing changes.
    """
    global _chosen, _explicit
    if device is not None and _device_type(device) != "cpu":
        return torch.get_num_threads()
    if n is not None:
        _chosen, _explicit = checks.positive_int("threads", n), True
    elif _explicit:
        return torch.get_num_threads()
    elif os.environ.get(THREADS_VARIABLE, "").strip():
        value = os.environ[THREADS_VARIABLE].strip()
        if value.lower() == "torch":
            return torch.get_num_threads()
        try:
            _chosen = checks.positive_int(THREADS_VARIABLE, int(value))
        except (ValueError, AelibError):
            raise AelibError(f"{THREADS_VARIABLE} must be a positive whole number of CPU threads (e.g. 1 or 2) or "
                             f"'torch' (torch's own choice), got {value!r}") from None
    elif any(os.environ.get(var, "").strip() for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")):
        return torch.get_num_threads()
    elif torch.get_num_threads() != (_TORCH_START if _chosen is None else _chosen):
        return torch.get_num_threads()   # torch.set_num_threads was called by someone else: theirs stands
    else:
        global _last_snapshot
        now = cpu_snapshot()
        if since is None and _last_snapshot and now and 0.05 <= now[0] - _last_snapshot[0] <= FRESH:
            since = _last_snapshot               # since the previous decision (a fit just before, the CLI's start)
        if since is None and now is not None:
            since = now
            time.sleep(FREE_CORE_SAMPLE)
        free = free_cores(since)
        _last_snapshot = cpu_snapshot()
        _chosen = 1 if free is None else max(1, min(_TORCH_START, int(free + 0.5)))
    if torch.get_num_threads() != _chosen:
        torch.set_num_threads(_chosen)
    return torch.get_num_threads()


def _device_type(device) -> str:
    """'cpu', 'cuda', 'mps', ... of a device given as a str or torch.device (present on this machine or not)."""
    try:
        return torch.device(device).type
    except (RuntimeError, TypeError):
        raise AelibError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got {checks.got(device)}") from None
