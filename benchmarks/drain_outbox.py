"""Drain 10,000 queued messages to a fake Graph API capped at N messages per second.

    python benchmarks/drain_outbox.py --rate 80 [--count 10000] [--postgres URL]

The fake provider runs in its own process on loopback and answers like Meta: a wamid, or
error 130429 (HTTP 400) for any request beyond N in a moving one-second window. The
outbox worker (one, in this process) sends through the real Meta transport with
PALABRE_RATE_META=N/second. Reported per database: the time, the throughput as a share
of N (the goal is at least 95 %), the most requests the provider received in any closed
one-second window (it must be at most N), how many it refused, and the load: the
machine's load average before and after, and the CPU time this process used. It runs on
the embedded SQLite file, and on PostgreSQL when `--postgres` names an empty database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from bisect import bisect_right
from pathlib import Path

import httpx

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT))
PHONE_ID = "106540352242922"
CONTACTS = 2000  # 10,000 messages: five per contact, each contact's in order


def provider(port: int, rate: int) -> None:
    """The fake Graph API (run in a subprocess): counts, refuses beyond the rate."""
    import uvicorn
    from limits import parse
    from limits.aio.storage import MemoryStorage
    from limits.aio.strategies import MovingWindowRateLimiter
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    limiter, item = MovingWindowRateLimiter(MemoryStorage()), parse(f"{rate}/second")
    arrivals: list[float] = []
    refused = [0]

    async def messages(request: Request) -> JSONResponse:
        body = await request.json()
        arrivals.append(time.time())
        if not await limiter.hit(item, PHONE_ID):
            refused[0] += 1
            error = {
                "message": "(#130429) Rate limit hit",
                "type": "OAuthException",
                "code": 130429,
            }
            return JSONResponse({"error": error}, status_code=400)
        who = body["to"]
        wamid = f"wamid.{len(arrivals)}"
        answer = {"messaging_product": "whatsapp", "contacts": [{"input": who, "wa_id": who}]}
        return JSONResponse(answer | {"messages": [{"id": wamid}]})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({"arrivals": arrivals, "refused": refused[0]})

    routes = [
        Route("/{version}/{phone}/messages", messages, methods=["POST"]),
        Route("/stats", stats),
    ]
    # Meta keeps connections open; uvicorn's 5 s would race httpx's pool reusing them.
    uvicorn.run(Starlette(routes=routes), port=port, log_level="error", timeout_keep_alive=60)


def busiest_second(times: list[float]) -> int:
    """The most arrivals in any closed one-second window [t, t + 1], as `limits` counts."""
    times = sorted(times)
    return max((bisect_right(times, t + 1) - i for i, t in enumerate(times)), default=0)


async def drain(
    database_url: str, provider_url: str, rate: int, count: int, concurrency: int
) -> float:
    """Queue `count` messages, start the worker, return when all are sent: seconds taken."""
    from palabre.bootstrap import build_engine
    from palabre.config import Settings
    from palabre.db import migrate
    from palabre.db.database import Database
    from palabre.outbox.rows import Queued
    from palabre.outbox.worker import Worker
    from palabre.runtime.messages import Outbound
    from palabre.stores.bundle import Stores
    from palabre.transports import Host
    from palabre_meta_cloud import MetaCloudTransport

    database = Database(database_url)
    await migrate.upgrade(database)
    stores = Stores.on(database, b"benchmark-secret-" + b"0" * 32)
    items = [
        Queued(
            Outbound(
                f"whatsapp:+2438{n % CONTACTS:08d}", f"message {n}", "fr", transport="meta_cloud"
            ),
            f"contact-{n % CONTACTS}",
            "broadcast",
            f"bench-{n}",
        )
        for n in range(count)
    ]
    for n in range(CONTACTS):  # a broadcast goes only to those who opted in
        await stores.consent.record(f"contact-{n}", "broadcast", True, "import")
    for start in range(0, count, 1000):
        await stores.outbox.enqueue(items[start : start + 1000])
    settings = Settings(
        secrets={
            "PALABRE_SECRET": "b" * 16 + "e" * 16,
            "META_ACCESS_TOKEN": "EAAbenchmark",
            "META_APP_SECRET": "benchmark-app-secret",
            "META_VERIFY_TOKEN": "benchmark-verify",
        },
        options={
            "META_PHONE_NUMBER_ID": PHONE_ID,
            "META_API_BASE": provider_url,
            "PALABRE_RATE_META": f"{rate}/second",
        },
    )
    engine = build_engine([ROOT / "flows" / "uic.yaml"], settings, stores=stores)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=10) as http:
        meta = MetaCloudTransport()
        host = Host(engine, settings, http, transports={meta.name: meta})
        await meta.startup(host)
        began = time.time()
        await Worker(host, stores.outbox, poll=0.05, concurrency=concurrency).drain()
        taken = time.time() - began
        depth = await stores.outbox.depth()
    await engine.aclose()
    assert depth == {"sent": count}, depth
    return taken


def run(label: str, database_url: str, rate: int, count: int, concurrency: int = 64) -> None:
    """One benchmark on one database; prints its figures."""
    from tests.conftest import free_port

    port = free_port()
    fake = subprocess.Popen(
        [sys.executable, __file__, "--provider", str(port), "--rate", str(rate)]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{url}/stats", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        load_before, cpu_before = _load(), _cpu()
        taken = asyncio.run(drain(database_url, url, rate, count, concurrency))
        stats = httpx.get(f"{url}/stats", timeout=30).json()
    finally:
        fake.terminate()
        fake.wait()
    print(
        f"{label}: {count} messages in {taken:.1f} s; {count / taken:.1f} msg/s, "
        f"{100 * count / taken / rate:.1f} % of N={rate}; busiest one-second window "
        f"{busiest_second(stats['arrivals'])}; refused by the provider {stats['refused']}; "
        f"load {load_before} -> {_load()}; CPU {_cpu() - cpu_before:.0f} s",
        flush=True,
    )


def _load() -> str:
    return "/".join(f"{n:.2f}" for n in os.getloadavg())


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # 80/second: Meta's default throughput per WhatsApp number, and Twilio's per sender.
    parser.add_argument("--rate", type=int, default=80, help="N: the provider's cap per second")
    parser.add_argument("--count", type=int, default=10_000)
    # Rows in flight: each spends its commits and its request (0.2 s, more on a busy
    # machine) while the others wait for their slots; too few leave slots unused.
    parser.add_argument("--concurrency", type=int, default=64, help="the worker's rows in flight")
    parser.add_argument("--postgres", help="an empty PostgreSQL database URL, to run there too")
    parser.add_argument("--provider", type=int, help=argparse.SUPPRESS)  # the fake's port
    args = parser.parse_args()
    if args.provider:
        provider(args.provider, args.rate)
        return
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]), flush=True)
    numbers = (args.rate, args.count, args.concurrency)
    with tempfile.TemporaryDirectory() as folder:
        run("sqlite", f"sqlite+aiosqlite:///{folder}/palabre.db", *numbers)
    if args.postgres:
        url = args.postgres.replace("postgresql://", "postgresql+psycopg://")
        run("postgresql", url, *numbers)


if __name__ == "__main__":
    main()
