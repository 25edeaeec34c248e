"""The processes a benchmark runs: redis-server, the fake Graph API, the floor, Palabre.

Each starts on a free loopback port with its own temporary folder and is stopped (its
own process id only) when its `with` block ends. Secrets are fixed, random-looking hex
(Palabre refuses placeholders), derived from their names so runs are repeatable.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis
from requests_file import ACCOUNT_SID, PHONE_NUMBER_ID

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the test suite's helpers: ports, the redis-server binary
from tests.conftest import free_port, redis_executable  # noqa: E402

BENCH = ROOT / "benchmarks"
PUBLIC_URL = "https://bench.example.org"
UIC = ROOT / "flows" / "uic.yaml"


def fixed_hex(name: str, length: int) -> str:
    return hashlib.sha256(f"palabre-bench-{name}".encode()).hexdigest()[:length]


SECRETS = {
    "PALABRE_SECRET": fixed_hex("secret", 64),
    "TWILIO_AUTH_TOKEN": fixed_hex("twilio-token", 32),
    "META_APP_SECRET": fixed_hex("meta-app-secret", 32),
    "META_VERIFY_TOKEN": fixed_hex("meta-verify", 16),
    "META_ACCESS_TOKEN": "EAA" + fixed_hex("meta-access", 60),
}


@dataclass(frozen=True)
class Server:
    """A running server: its process and the URL it answers on."""

    process: subprocess.Popen[bytes]
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid


def clean_environment() -> dict[str, str]:
    """This process's environment without the settings a server reads (they are given)."""
    own = ("PALABRE_", "TWILIO_", "META_", "DHIS2_")
    dropped = {"REDIS_URL", "DATABASE_URL", "PUBLIC_URL"}
    return {k: v for k, v in os.environ.items() if not k.startswith(own) and k not in dropped}


@contextmanager
def running(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """Start `command` (output to `log`); stop it at the end, by its own pid only."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=log.parent,  # not the project: a .env there must not configure a server
            env={**clean_environment(), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    process.log = log  # type: ignore[attr-defined]  # for wait_until's message
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def redis_server(work: Path) -> Iterator[Server]:
    """A throwaway redis-server without persistence."""
    port = free_port()
    command = [redis_executable(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(work.resolve())]
    with running(command, {}, work / "redis.log") as process:
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        wait_until(lambda: client.ping(), process, url)
        client.close()
        yield Server(process, url)


@contextmanager
def fake_graph(work: Path) -> Iterator[Server]:
    port = free_port()
    command = [sys.executable, str(BENCH / "fake_graph.py"), "--port", str(port)]
    with running(command, {}, work / "graph.log") as process:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(url + "/stats", timeout=1), process, url)
        yield Server(process, url)


def uvicorn_options() -> list[str]:
    """The uvicorn settings of `palabre serve`, for the floor to run with the same."""
    from palabre.serve import KEEP_ALIVE_SECONDS, MAX_CONNECTIONS

    return ["--limit-concurrency", str(MAX_CONNECTIONS), "--keep-alive", str(KEEP_ALIVE_SECONDS)]


@contextmanager
def floor(work: Path, redis_url: str, graph_url: str) -> Iterator[Server]:
    port = free_port()
    command = [sys.executable, str(BENCH / "floor_app.py"), "--port", str(port)]
    env = {"REDIS_URL": redis_url, "PUBLIC_URL": PUBLIC_URL, "META_API_BASE": graph_url}
    env |= {"META_PHONE_NUMBER_ID": PHONE_NUMBER_ID, **SECRETS}
    with running(command + uvicorn_options(), env, work / "floor.log") as process:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(url + "/healthz", timeout=1).raise_for_status(), process, url)
        yield Server(process, url)


def engine_env(redis_url: str | None, graph_url: str, data_dir: Path) -> dict[str, str]:
    """Palabre's settings: Twilio and Meta on, DHIS-2 not configured (the flow skips it)."""
    env = {
        "PALABRE_PUBLIC_URL": PUBLIC_URL,
        "PALABRE_LOG_LEVEL": "WARNING",
        "PALABRE_DATA_DIR": str(data_dir),
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "META_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "META_API_BASE": graph_url,
        # Meta's default 80/second per number is the provider's cap, not work: lifted so
        # that the replies of a run are sent during the run.
        "PALABRE_RATE_META": "100000/second",
        **SECRETS,
    }
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


@contextmanager
def palabre(work: Path, env: dict[str, str]) -> Iterator[Server]:
    port = free_port()
    command = [sys.executable, "-m", "palabre.cli", "serve", "--flows", str(UIC)]
    command += ["--port", str(port)]
    with running(command, env, work / "palabre.log") as process:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(url + "/readyz", timeout=1).raise_for_status(), process, url)
        yield Server(process, url)


def wait_until(check, process: subprocess.Popen, what: str, seconds: float = 60) -> None:
    """Call `check` until it stops raising; SystemExit if the process ends (with the end of
    its output) or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            log = getattr(process, "log", None)
            tail = log.read_text(errors="replace")[-2000:] if log else ""
            raise SystemExit(f"{what} did not start (exit status {process.returncode})\n{tail}")
        try:
            check()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise SystemExit(f"{what} did not answer in {seconds:g} s") from None
            time.sleep(0.1)
