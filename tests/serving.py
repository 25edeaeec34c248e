"""Run a real `palabre serve` process on a loopback port, for tests that need the whole server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from tests.conftest import free_port

ROOT = Path(__file__).parent.parent


@dataclass
class Served:
    """A running `palabre serve`: its process and base URL."""

    process: subprocess.Popen[bytes]
    url: str

    def stop(self) -> str:
        """Stop the server; returns what it wrote to stderr."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            _, err = self.process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return err.decode(errors="replace")


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
