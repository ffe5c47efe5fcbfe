"""Process figures the serving benchmarks report beside their own (from /proc)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cpu_seconds", "runqueue_wait", "tree_cpu_seconds"]


def _stat(pid: int | str) -> list[str]:
    """/proc/PID/stat's fields after the command name (field 3 onwards)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int | str = "self") -> float:
    """CPU time (user + system) this process has used, in seconds."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(roots: list[int]) -> float:
    """cpu_seconds() of `roots` and of every process below them (e.g. `floe serve
    --instances N`: the supervisor and its workers)."""
    parent: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent[int(entry)] = int(_stat(entry)[1])
                used[int(entry)] = cpu_seconds(entry)
            except OSError:  # gone meanwhile
                continue

    def below(pid: int) -> bool:
        while pid > 0:
            if pid in roots:
                return True
            pid = parent.get(pid, 0)
        return False

    return sum(seconds for pid, seconds in used.items() if below(pid))


def runqueue_wait(pid: int | str = "self") -> float:
    """Seconds this process's threads spent runnable but not running (CPU taken by others).

    On this shared 2-core machine a server that is slow because a neighbour holds its CPU
    looks like a slow server; this tells the two apart.
    """
    return sum(int(Path(task, "schedstat").read_text().split()[1])
               for task in Path(f"/proc/{pid}/task").iterdir()) / 1e9
