"""py-spy on the engine while wrk runs: where the server's CPU goes, per request.

py-spy samples the server from outside, pausing it for each sample (`--nonblocking`
tore about 40 % of the stacks here), so the run it profiles is slowed a little. Only the
thread holding the GIL is sampled (`--gil`): Python work, which is what a GIL-bound
server spends its CPU on; a thread waiting in epoll, a queue or fsync is not counted
(py-spy's idle detection alone counts those on this machine). Figures are shares of the
samples, turned into µs per request with that run's CPU from /proc.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from measure import Run
from stacks import by_package, read_stacks, summary

INSTALL = "py-spy is needed for --profile: `pip install py-spy` (a dev tool, not a dependency)"
RATE = 200  # samples per second


class PySpy:
    """Records one process for `seconds` into `output` (py-spy's raw, collapsed format)."""

    def __init__(self, pid: int, seconds: float, output: Path) -> None:
        found = shutil.which("py-spy")
        if found is None:
            raise SystemExit(INSTALL)
        self.command = [found, "record", "--pid", str(pid), "--duration", str(int(seconds) + 1)]
        self.command += ["--rate", str(RATE), "--format", "raw", "--output", str(output)]
        self.command += ["--gil", "--threads"]
        self.output = output
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def finish(self, measured: Run, name: str = "engine", top: int = 12) -> dict[str, object]:
        """Wait for py-spy; the summary of what it saw, with the run's figures."""
        assert self.process is not None, "start() first"
        _, errors = self.process.communicate()
        if self.process.returncode != 0:
            raise RuntimeError(f"py-spy failed: {errors.decode(errors='replace')[-2000:]}")
        stacks = read_stacks(self.output)
        cost = measured.cpu_us_per_request
        text = summary(stacks, cost, top)
        heading = (
            f"py-spy on the {name}: {measured.throughput:.0f} req/s, {cost:.0f} µs CPU per "
            f"request while profiled; raw stacks in {self.output.name}"
        )
        total = sum(count for _, count in stacks) or 1
        packages = {
            name: round(count / total, 4) for name, count in by_package(stacks).most_common(top)
        }
        return {
            "text": f"{heading}\n{text}",
            "cpu_us_per_request": round(cost, 1),
            "by_package": packages,
        }
