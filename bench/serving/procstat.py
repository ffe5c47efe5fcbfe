"""Process figures the serving benchmarks report beside their own (from /proc)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["runqueue_wait"]


def runqueue_wait(pid: int | str = "self") -> float:
    """Seconds this process's threads spent runnable but not running (CPU taken by others).

    On this shared 2-core machine a server that is slow because a neighbour holds its CPU
    looks like a slow server; this tells the two apart.
    """
    return sum(int(Path(task, "schedstat").read_text().split()[1])
               for task in Path(f"/proc/{pid}/task").iterdir()) / 1e9
