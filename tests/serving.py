"""Run a real `palabre serve` process on a loopback port, for tests that need the whole server."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
from tests.conftest import free_port

ROOT = Path(__file__).parent.parent


class Served:
    """A running `palabre serve`: its process, its base URL, and what it writes to stderr.

    stderr is drained by a thread as it comes, so a chatty server never blocks on a full pipe.
    """

    def __init__(self, process: subprocess.Popen[bytes], url: str) -> None:
        self.process = process
        self.url = url
        self._stderr: list[bytes] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._stderr.append(line)

    @property
    def stderr(self) -> str:
        """What the server wrote to stderr so far."""
        return b"".join(self._stderr).decode(errors="replace")

    def stop(self) -> str:
        """Stop the server; returns everything it wrote to stderr."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=10)
        return self.stderr


def start_serve(
    data_dir: Path,
    env: Mapping[str, str],
    *,
    flows: str = "flows/uic.yaml",
    args: tuple[str, ...] = (),
) -> Served:
    """Start `palabre serve` with `env` added to this process's environment; wait for /healthz."""
    port = free_port()
    full_env = {**os.environ, "PALABRE_DATA_DIR": str(data_dir), **env}
    command = [sys.executable, "-m", "palabre.cli", "serve", "--flows", flows, "--port", str(port)]
    process = subprocess.Popen(
        [*command, *args],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    served = Served(process, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"palabre serve exited early:\n{served.stop()}")
        try:
            httpx.get(f"{served.url}/healthz", timeout=1)
            return served
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"palabre serve did not start:\n{served.stop()}")


@contextmanager
def serving(data_dir: Path, env: Mapping[str, str], **kwargs: object) -> Iterator[Served]:
    """`start_serve` as a context manager that always stops the server."""
    served = start_serve(data_dir, env, **kwargs)  # type: ignore[arg-type]
    try:
        yield served
    finally:
        served.stop()
