"""How both floors (floor_app.py, events_floor.py) run: uvicorn with the settings of
`palabre serve`, which the benchmarks pass on the command line (servers.uvicorn_options)."""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn


def serving_parser(description: str) -> argparse.ArgumentParser:
    """A floor's command line: where it listens and uvicorn's limits."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--limit-concurrency", type=int, default=1000)
    parser.add_argument("--keep-alive", type=int, default=5)
    return parser


def serve(app: Any, args: argparse.Namespace) -> None:
    """Run `app` as `palabre serve` runs Palabre: no access log, the same limits."""
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        limit_concurrency=args.limit_concurrency,
        timeout_keep_alive=args.keep_alive,
    )
