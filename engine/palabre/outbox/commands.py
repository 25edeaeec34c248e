"""`palabre worker` and `palabre messages`: the outbox from the command line.

`palabre worker` runs what `palabre serve` runs in the background (the outbox worker,
retry queues, clean-ups) without serving HTTP: start as many as the senders need, on any
machine that shares the database (and REDIS_URL, so that they share the rate limits).
It checks the settings and the schema as `serve` does, and stops on SIGTERM or Ctrl-C.

`palabre messages [failed] [--status STATUS] [--contact ADDRESS] [--broadcast ID]
[--limit N] [--json]`
lists the newest rows, as a table or JSON Lines (palabre.outbox.listing): time, transport,
status, attempts, error, provider id, uid, kind, purpose and contact key; never a body or
an address.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time

from palabre.config import Settings
from palabre.outbox.listing import (
    KNOWN_STATUSES,
    contact_key_of,
    line_of,
    lines_of,
    statuses_wanted,
)
from palabre.outbox.rows import Row

# `line_of` stays importable from here, where the table used to be printed.
__all__ = [
    "add_messages_command",
    "add_outbox_commands",
    "line_of",
    "run_messages",
    "run_worker_command",
]


def add_outbox_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `worker` and `messages` to the `palabre` parser."""
    worker = commands.add_parser(
        "worker", help="send queued messages (the outbox) without serving webhooks"
    )
    worker.add_argument("--flows", default="flows", help="the folder (or file) of flows")
    worker.set_defaults(run=run_worker_command)
    add_messages_command(commands)


def add_messages_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `messages` to the `palabre` parser."""
    listing = commands.add_parser(
        "messages", help="list outbound messages: status, attempts, errors (no bodies)"
    )
    which = listing.add_mutually_exclusive_group()
    which.add_argument(
        "which",
        nargs="?",
        choices=["failed"],
        metavar="failed",
        help="only those needing a look (failed, undelivered, unconfirmed, expired)",
    )
    which.add_argument(
        "--status",
        choices=KNOWN_STATUSES,
        metavar="STATUS",
        help=f"only those in this status: {', '.join(KNOWN_STATUSES)}",
    )
    listing.add_argument(
        "--contact", metavar="ADDRESS", help="only this contact's (+243..., whatsapp:+243...)"
    )
    listing.add_argument("--broadcast", metavar="ID", help="only this broadcast's")
    listing.add_argument(
        "--limit", type=int, default=50, metavar="N", help="how many, newest first"
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(run=run_messages)


def run_worker_command(args: argparse.Namespace) -> int:
    """The `worker` command; returns the exit status."""
    from palabre.heap import settle_heap
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
    settle_heap()  # a long-running process too: see palabre.heap
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
    """The `messages` command: the newest rows, as a table or JSON Lines."""
    from palabre.plugins import make_plugin_manager

    settings = Settings.from_env()
    # Before the database is opened: a missing secret or a wrong address is said at once.
    contact = contact_key_of(args.contact, settings) if args.contact else None
    statuses = statuses_wanted(args.which, args.status)
    manager = make_plugin_manager()

    async def rows() -> list[Row]:
        stores = manager.hook.make_stores(settings=settings, clock=time.time)
        try:
            return await stores.outbox.rows(
                max(1, args.limit), statuses, contact_key=contact, broadcast_id=args.broadcast
            )
        finally:
            await stores.aclose()

    for line in lines_of(asyncio.run(rows()), as_json=args.json):
        print(line)
    return 0
