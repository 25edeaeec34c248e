"""`palabre worker` and `palabre messages`: the outbox from the command line.

`palabre worker` runs what `palabre serve` runs in the background (the outbox worker,
retry queues, clean-ups) without serving HTTP: start as many as the senders need, on any
machine that shares the database (and REDIS_URL, so that they share the rate limits).
It checks the settings and the schema as `serve` does, and stops on SIGTERM or Ctrl-C.

`palabre messages [failed] [--limit N]` lists the newest rows: uid, transport, status,
attempts, error and contact key; never a body or an address.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time

from palabre.config import Settings
from palabre.outbox.rows import Row


def add_outbox_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `worker` and `messages` to the `palabre` parser."""
    worker = commands.add_parser(
        "worker", help="send queued messages (the outbox) without serving webhooks"
    )
    worker.add_argument("--flows", default="flows", help="the folder (or file) of flows")
    worker.set_defaults(run=run_worker_command)
    listing = commands.add_parser(
        "messages", help="list outbound messages: status, attempts, errors (no bodies)"
    )
    listing.add_argument("which", nargs="?", choices=["failed"], help="only those needing a look")
    listing.add_argument("--limit", type=int, default=50, help="how many, newest first")
    listing.set_defaults(run=run_messages)


def run_worker_command(args: argparse.Namespace) -> int:
    """The `worker` command; returns the exit status."""
    from palabre.logs import configure_logging
    from palabre.plugins import make_plugin_manager
    from palabre.serve import SERVE_LOG_LEVEL, prepare_database, say, startup_problems
    from palabre.web.app import create_app

    settings = Settings.from_env()
    manager = make_plugin_manager()
    problems = startup_problems(settings, manager, [args.flows])
    if problems:
        for line in problems:
            say(line)
        return 2
    created = asyncio.run(prepare_database(settings, manager))
    if created:
        say(created)
    configure_logging(settings.log_level or SERVE_LOG_LEVEL)
    app = create_app([args.flows], settings, plugins=manager)
    asyncio.run(_until_stopped(app))
    return 0


async def _until_stopped(app: object) -> None:
    """Run the app's lifespan (transports and background jobs) until SIGTERM or SIGINT."""
    from starlette.applications import Starlette

    assert isinstance(app, Starlette)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with app.router.lifespan_context(app):
        print("palabre: worker started", file=sys.stderr, flush=True)
        await stop.wait()


def run_messages(args: argparse.Namespace) -> int:
    """The `messages` command: one line per row, newest first."""
    from palabre.plugins import make_plugin_manager

    settings = Settings.from_env()
    manager = make_plugin_manager()

    async def rows() -> list[Row]:
        stores = manager.hook.make_stores(settings=settings, clock=time.time)
        try:
            limit = max(1, args.limit)
            if args.which == "failed":
                return await stores.outbox.failed(limit)
            return list(await stores.outbox.rows(limit))
        finally:
            await stores.aclose()

    found = asyncio.run(rows())
    print(f"{'uid':<32}  {'channel':<10}  {'status':<11}  tries  {'contact':<16}  error")
    for row in found:
        print(line_of(row))
    return 0


def line_of(row: Row) -> str:
    """One row as `palabre messages` prints it."""
    error = " ".join(part for part in (row.error_code, row.last_error) if part) or "-"
    return (
        f"{row.uid:<32}  {row.channel:<10}  {row.status:<11}  {row.attempts:>5}  "
        f"{row.contact_key:<16}  {error}"
    )
