"""Running wrk on a request file (replay.lua), and what it says: throughput, latency, CPU.

wrk's own CPU is read from /proc/<pid>/stat once it has exited and before it is reaped,
so it counts everything it did, loading the request file included (an overestimate of
what generating the load costs, never an underestimate).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from procstat import cpu_seconds

SCRIPT = Path(__file__).with_name("replay.lua")
PROFILES = Path(tempfile.gettempdir()) / "palabre-profiles"
INSTALL = "wrk is needed: `sudo apt-get install -y wrk` (Debian and Ubuntu package `wrk`)"


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: its JSON line (replay.lua's `done`), its CPU seconds, its text output."""

    summary: dict[str, float]
    cpu: float
    output: str

    @property
    def requests(self) -> int:
        return int(self.summary["requests"])

    @property
    def seconds(self) -> float:
        return self.summary["duration_us"] / 1e6

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    @property
    def errors(self) -> int:
        keys = ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
        return int(sum(self.summary[key] for key in keys))

    def latency_ms(self, name: str) -> float:
        return self.summary[f"{name}_us"] / 1000


def wrk_binary() -> str:
    """The wrk executable; SystemExit saying how to install it when there is none."""
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit(INSTALL)
    return found


def run_wrk(
    url: str,
    requests_file: Path,
    *,
    seconds: float,
    connections: int = 32,
    threads: int = 1,
    offset: int = 0,
    timeout: float = 10.0,
) -> WrkResult:
    """Send the file's requests to `url` for `seconds`, `connections` at once."""
    duration = max(1, math.ceil(seconds))  # wrk takes whole seconds only
    command = [wrk_binary(), f"-t{threads}", f"-c{connections}", f"-d{duration}s"]
    command += [f"--timeout={timeout:g}s", "--latency", "-s", str(SCRIPT), url]
    command += ["--", str(requests_file), str(offset), str(threads)]
    with tempfile.TemporaryFile() as out:  # never a pipe: nobody reads it while wrk runs
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
        cpu = cpu_seconds(process.pid)
        process.wait()
        out.seek(0)
        output = out.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{output}")
    line = next((text for text in output.splitlines() if text.startswith('{"requests"')), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{output}")
    return WrkResult(json.loads(line), cpu, output)


def add_run_options(parser: argparse.ArgumentParser, seconds: float) -> None:
    """The options every wrk comparison takes: rounds, their length, the load, where
    profiles go and the JSON line (`seconds`: this benchmark's default run length)."""
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=seconds, help="per run")
    parser.add_argument("--warmup", type=float, default=5, help="seconds per server")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--profile-dir", type=Path, default=PROFILES)
    parser.add_argument("--json", type=Path, help="also write the JSON line to this file")
