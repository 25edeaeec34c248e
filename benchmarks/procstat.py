"""What a process costs, read from /proc: CPU seconds (its own and its children's) and RSS.

A server's CPU counts every thread of its process (/proc/<pid>/stat utime + stime) and
its descendants alive at the time (Palabre draws QR codes in a child process), so work
moved out of the server process is still counted.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads); 0 once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime: fields 14 and 15


def descendants(pid: int) -> list[int]:
    """The process ids below `pid` (this kernel has no /proc/<pid>/task/<tid>/children)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], list(parents.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo += parents.get(child, [])
    return found


@dataclass
class TreeCpu:
    """CPU seconds of a process and its descendants, per pid, as last read."""

    pid: int
    seen: dict[int, float] = field(default_factory=dict)

    def read(self) -> float:
        """The tree's CPU seconds; a child that ended keeps its last reading."""
        for pid in [self.pid, *descendants(self.pid)]:
            self.seen[pid] = max(self.seen.get(pid, 0.0), cpu_seconds(pid))
        return sum(self.seen.values())

    def children(self) -> float:
        """The descendants' share of the last `read`."""
        return sum(seconds for pid, seconds in self.seen.items() if pid != self.pid)


def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


class RssSampler:
    """Samples a process's VmRSS every `every` seconds on a thread, while in a `with`."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self.pid, self.every = pid, every
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self.samples.append(rss_kib(self.pid))
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(rss_kib(self.pid))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(rss_kib(self.pid))


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as `uptime` shows them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def busy(seconds: float, wall: float) -> float:
    """The fraction of one core that `seconds` of CPU over `wall` seconds is."""
    return seconds / wall if wall > 0 else 0.0
