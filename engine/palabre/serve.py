"""`palabre serve`: check every setting, say once what runs where, then run uvicorn.

Start-up refuses (exit status 2, no traceback) with one line per problem, all at once:
Palabre's own settings (`Settings.problems()`, DATABASE_URL), the names in
PALABRE_DISABLE_PLUGINS, and each plugin's (`check_settings` hook). Then the database:
unreachable, or its schema behind the code (`palabre db upgrade`), is one line too; a new
embedded database is created at the current schema, and said so. Then the app starts once
with logs muted, so a flow or store error is one clear message too, and uvicorn starts it
for real.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import pluggy
from starlette.applications import Starlette

from palabre.config import Settings
from palabre.config_checks import TRUE_WORDS
from palabre.db.url import database_url_problem
from palabre.heap import settle_heap
from palabre.logs import configure_logging
from palabre.plugins import make_plugin_manager, unknown_plugins

BANNER = (
    "palabre: INSECURE DEV MODE: unsigned webhooks are accepted and secrets may be "
    "throwaway ones; never expose this server to the internet"
)
SERVE_LOG_LEVEL = "INFO"
# What uvicorn listens on when told to take every address, and what to open instead.
ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}
# Connections at once, beyond which uvicorn answers 503 at once: each may buffer up to
# ~80 KiB (headers, unread body) outside the app's body budget, so this bounds that too.
MAX_CONNECTIONS = 1000
KEEP_ALIVE_SECONDS = 5  # uvicorn's default, kept: an idle connection is let go quickly


def run(args: argparse.Namespace) -> int:
    """The `serve` command; returns the exit status."""
    import uvicorn

    from palabre.web.app import create_app

    settings = Settings.from_env(dev=args.insecure_dev)
    for notice in settings.notices():
        say(notice)
    manager = make_plugin_manager()
    problems = startup_problems(settings, manager, [args.flows])
    if problems:
        for line in problems:
            say(line)
        return 2
    if args.insecure_dev:
        print(BANNER, file=sys.stderr)
    created = asyncio.run(prepare_database(settings, manager))
    if created:
        say(created)
    app = create_app(
        [args.flows],
        settings,
        plugins=manager,
        insecure_dev=args.insecure_dev,
        workers=args.workers,
    )
    configure_logging("CRITICAL")  # the trial start must not log what the real one will
    asyncio.run(_preflight(app))
    configure_logging(settings.log_level or SERVE_LOG_LEVEL)
    say(serving_line(args.host, args.port, simulator_on(settings, manager, args.insecure_dev)))
    settle_heap()  # start-up is done: see palabre.heap
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        limit_concurrency=MAX_CONNECTIONS,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    return 0


def startup_problems(
    settings: Settings, manager: pluggy.PluginManager, flow_paths: Iterable[str | Path]
) -> list[str]:
    """Every problem that keeps `palabre serve` from starting, one line each."""
    found = settings.problems(keyed_secrets=flow_secret_names(flow_paths))
    found += [line for line in [database_url_problem(settings.database_url)] if line]
    found += unknown_plugins(settings.disabled_plugins)
    for batch in manager.hook.check_settings(settings=settings):
        found += batch
    return found


async def prepare_database(settings: Settings, manager: pluggy.PluginManager) -> str | None:
    """Check the durable stores' schema before anything starts (StoreError when it is behind
    or the database is unreachable); returns a line when a new database was created."""
    stores = manager.hook.make_stores(settings=settings, clock=time.time)
    if stores is None:
        return None
    try:
        return await stores.open()
    finally:
        await stores.aclose()


def flow_secret_names(paths: Iterable[str | Path]) -> set[str]:
    """The secrets (`settings.secret_env`) named by the flows that run actions."""
    from palabre.bootstrap import flow_files
    from palabre.flow.loader import parse_flow
    from palabre.flow.source import read_source

    names = set()
    for file in flow_files(list(paths)):
        flow, _ = parse_flow(read_source(file))  # a broken flow is reported by the start
        if flow and any(step.kind == "action" for step in flow.steps.values()):
            names.add(flow.settings.secret_env)
    return names


def simulator_on(settings: Settings, manager: pluggy.PluginManager, insecure_dev: bool) -> bool:
    """Whether the web simulator answers: its plugin is loaded, and dev mode or asked for."""
    wanted = (settings.option("PALABRE_SIMULATOR") or "").strip().lower() in TRUE_WORDS
    return manager.get_plugin("web") is not None and (insecure_dev or wanted)


def serving_line(host: str, port: int, simulator: bool) -> str:
    """`serving on http://127.0.0.1:8000/ (simulator at /)`: the address to open."""
    shown = ANY_ADDRESS.get(host, host)
    if ":" in shown:  # an IPv6 address goes in brackets inside a URL
        shown = f"[{shown}]"
    line = f"serving on http://{shown}:{port}/"
    if host in ANY_ADDRESS:
        line += " (listening on every address)"
    return line + (" (simulator at /)" if simulator else "")


def say(line: str) -> None:
    print(f"palabre: {line}", file=sys.stderr)


async def _preflight(app: Starlette) -> None:
    """Start and stop the app once, so that a flow or store error is one clear message."""
    async with app.router.lifespan_context(app):
        pass
