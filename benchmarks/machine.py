"""What every benchmark prints: the machine it ran on and its result as a markdown table, the form
docs/results.md quotes (imported by the scripts in this folder)."""
from __future__ import annotations

import datetime
import os
import platform


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else what the platform module knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def markdown_table(header: list[str], rows: list[list], title: str = "") -> str:
    """``rows`` under ``header`` as a markdown table (numbers right-aligned), after a line naming the machine, the
    date and the load: paste it into docs/results.md as it is."""
    numeric = [all(isinstance(r[i], (int, float)) or str(r[i]).rstrip("x%").replace(",", "").replace(".", "")
                   .lstrip("-").isdigit() for r in rows) for i in range(len(header))]
    lines = [f"{title}{' ' if title else ''}({cpu_name()}, {os.cpu_count()} cores, load average "
             f"{os.getloadavg()[0]:.1f}, {datetime.date.today().isoformat()})", "",
             "| " + " | ".join(header) + " |",
             "| " + " | ".join("---:" if n else "---" for n in numeric) + " |"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
