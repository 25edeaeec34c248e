"""Benchmark: the engine alone, no HTTP, in µs per message on each session store.

    python benchmarks/engine_profile.py
    python benchmarks/engine_profile.py --runs 5 --stores redis --conversations 2000

The engine is built as `palabre serve` builds it (palabre.bootstrap.build_engine: the
UIC flow, the installed plugins, the durable stores in an embedded SQLite file), over a
throwaway redis-server (`redis`) or the embedded SQLite session store (`sqlite`), with
logs at WARNING. It is fed UIC conversations as the Twilio transport feeds it:
`engine.handle(inbound, inline=True)`, then the reply's rows marked sent
(`Host.answered_inline`). `--concurrency` messages are in flight at once, from
interleaved contacts (requests_file.schedule), each contact new.

Per store, after a warm-up run, `--runs` runs: wall µs per message (one over the
throughput), CPU µs per message (this process, every thread, plus the QR drawing
process), and per message the round trips that cost it (benchmarks/counters.py): calls
to aiosqlite's thread, `asyncio.to_thread` calls, SQL statements, Redis commands; the
medians; then one JSON line. A regression
in the engine shows here even when HTTP noise hides it in benchmarks/webhooks.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from counters import counting
from procstat import cpu_seconds, load_average
from provenance import code_state
from requests_file import schedule
from servers import SECRETS, UIC, redis_server

SLOTS = 1000  # contacts interleaved, as in the webhook benchmark
COUNTED = ("aiosqlite", "to_thread", "sql", "redis")


async def feed(engine, host, contacts: range, concurrency: int, distinct: bool) -> dict:
    """Run the UIC conversations of `contacts` through the engine: its figures."""
    from palabre.errors import StoreError
    from palabre.runtime.messages import Inbound

    slots = min(SLOTS, len(contacts))
    messages = iter(schedule(slots, len(contacts) // slots, contacts.start, distinct))
    failed = []

    async def talk() -> None:
        for message in messages:  # one shared iterator: each message is taken once
            inbound = Inbound(
                contact=f"whatsapp:{message.phone}",
                text=message.text,
                channel="whatsapp",
                message_id=message.message_id("SM"),
                transport="twilio",
            )
            try:
                reply = await engine.handle(inbound, inline=True)
                await host.answered_inline(reply)
            except StoreError as exc:  # a 503 for a server: counted, and the run goes on
                failed.append(type(exc).__name__)

    with counting() as counts:
        cpu, wall = process_cpu(), time.perf_counter()
        await asyncio.gather(*(talk() for _ in range(concurrency)))
        wall, cpu = time.perf_counter() - wall, process_cpu() - cpu
    count = len(contacts) * 6
    figures = {"wall_us": wall / count * 1e6, "cpu_us": cpu / count * 1e6, "errors": len(failed)}
    return figures | {f"{name}_per_message": counts[name] / count for name in COUNTED}


def process_cpu() -> float:
    """This process's CPU seconds and the QR drawing process's (it draws off the loop)."""
    from palabre_qr.drawing import DRAWER

    return time.process_time() + (cpu_seconds(DRAWER.pid) if DRAWER.pid else 0.0)


async def measure_store(store: str, redis_url: str | None, folder: Path, args) -> dict:
    """A warm-up run and `args.runs` runs on one store; each run's figures, and medians."""
    from palabre.bootstrap import build_engine
    from palabre.config import Settings
    from palabre.heap import settle_heap
    from palabre.transports import Host

    settings = Settings(
        redis_url=redis_url, data_dir=folder, secrets=dict(SECRETS), log_level="WARNING"
    )
    engine = build_engine([UIC], settings)
    host = Host(engine, settings, None, False, {})  # type: ignore[arg-type]  # no HTTP here
    await engine.stores.open()
    settle_heap()  # as `palabre serve` does once started
    slots = min(SLOTS, args.conversations)
    size = args.conversations // slots * slots
    runs = []
    try:
        for number in range(args.runs + 1):  # run 0 warms up
            contacts = range(number * size, (number + 1) * size)
            figures = await feed(engine, host, contacts, args.concurrency, args.distinct_codes)
            if number:
                runs.append(figures)
                print(
                    f"  {store} run {number}: {figures['wall_us']:.0f} µs/message", file=sys.stderr
                )
    finally:
        await engine.aclose()
    medians = {name: statistics.median(run[name] for run in runs) for name in runs[0]}
    return {"store": store, "runs": runs, "median": medians}


def main() -> None:
    parser = argparse.ArgumentParser(description="The engine alone: µs per message per store.")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--conversations", type=int, default=1000, help="per run (6 messages)")
    parser.add_argument("--concurrency", type=int, default=32, help="messages in flight")
    parser.add_argument("--stores", default="redis,sqlite")
    parser.add_argument("--distinct-codes", action="store_true", help="names vary per contact")
    args = parser.parse_args()
    from palabre.logs import configure_logging

    configure_logging("WARNING")
    stores = [name.strip() for name in args.stores.split(",") if name.strip()]
    load_before, results, code = load_average(), [], code_state()
    with tempfile.TemporaryDirectory(prefix="palabre-engine-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        redis = stack.enter_context(redis_server(work)) if "redis" in stores else None
        for store in stores:
            url = redis.url if store == "redis" and redis else None
            results.append(asyncio.run(measure_store(store, url, work / store, args)))
    print_results(results, args, (load_before, load_average()), code)


def print_results(results: list[dict], args, loads: tuple[str, str], code: dict) -> None:
    print(f"load average before: {loads[0]}   after: {loads[1]}")
    print(f"code measured: {json.dumps(code)}")
    print(
        f"{args.conversations} conversations x 6 messages per run, {args.concurrency} in "
        f"flight, median of {args.runs} runs after a warm-up"
    )
    counted = "".join(f"{name + '/msg':>14}" for name in COUNTED)
    print(f"{'store':<8}{'wall µs/msg':>12}{'CPU µs/msg':>12}{counted}{'errors':>8}   runs (wall)")
    for result in results:
        median, runs = result["median"], result["runs"]
        each = ", ".join(f"{run['wall_us']:.0f}" for run in runs)
        cells = "".join(f"{median[name + '_per_message']:>14.1f}" for name in COUNTED)
        print(
            f"{result['store']:<8}{median['wall_us']:>12.0f}{median['cpu_us']:>12.0f}{cells}"
            f"{sum(run['errors'] for run in runs):>8}   {each}"
        )
    out = {"benchmark": "engine_profile", "load_before": loads[0], "load_after": loads[1]}
    out |= {"code": code, "args": vars(args), "stores": results}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
