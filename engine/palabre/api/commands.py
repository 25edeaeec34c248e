"""`palabre apikey create|revoke|list` and `palabre notify`: the events API from the shell.

`apikey create NAME` prints the new key once (only its keyed hash is kept); `revoke NAME`
stops it at once. `notify EVENT --to ADDRESS --data k=v --id ID` does what a POST to
/api/v1/events does, under the key name `cli`: the same id twice notifies once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from typing import Any

from palabre.config import SECRET, Settings
from palabre.errors import ConfigError


def add_api_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `apikey` and `notify` to the `palabre` parser."""
    apikey = commands.add_parser("apikey", help="keys to the events API (POST /api/v1/events)")
    steps = apikey.add_subparsers(dest="step", required=True)
    for step, helptext in (("create", "make a key; it is printed once"), ("revoke", "stop one")):
        sub = steps.add_parser(step, help=helptext)
        sub.add_argument("name", help="who uses it: smartqueue, fleet...")
        sub.set_defaults(run=run_apikey)
    steps.add_parser("list", help="the keys, in force or revoked").set_defaults(run=run_apikey)

    notify = commands.add_parser("notify", help="send an event, as POST /api/v1/events does")
    notify.add_argument("event", help="the event, as a flow's triggers name it")
    notify.add_argument("--to", required=True, help="the person: +243..., whatsapp:+243...")
    notify.add_argument("--data", action="append", default=[], metavar="K=V")
    notify.add_argument("--id", help="your id for this event (default: a new one)")
    notify.add_argument("--channel", choices=["whatsapp", "sms"])
    notify.add_argument("--lang", help="the person's language, when known")
    notify.add_argument("--ttl", type=int, help="seconds after which it is not worth sending")
    notify.add_argument("--flows", default="flows", help="the folder (or file) of flows")
    notify.set_defaults(run=run_notify)


def run_apikey(args: argparse.Namespace) -> int:
    """The `apikey` command; returns the exit status."""
    return asyncio.run(_apikey(args))


async def _apikey(args: argparse.Namespace) -> int:
    from palabre.api.keys import ApiKeys, key_hasher
    from palabre.plugins import make_plugin_manager

    settings = Settings.from_env()
    if not settings.has_secret(SECRET):
        raise ConfigError(f"API keys need {SECRET}: the server checks keys with it")
    stores = make_plugin_manager().hook.make_stores(settings=settings, clock=time.time)
    if stores is None:
        raise ConfigError("API keys need the durable stores (the database)")
    try:
        await stores.open()
        keys = ApiKeys(stores.database, key_hasher(settings.secret(SECRET)))
        return await _key_step(keys, args)
    finally:
        await stores.aclose()


async def _key_step(keys: Any, args: argparse.Namespace) -> int:
    if args.step == "create":
        key = await keys.create(args.name)
        print(key)
        print(f"the key '{args.name}': shown once, keep it secret", file=sys.stderr)
        return 0
    if args.step == "revoke":
        if not await keys.revoke(args.name):
            raise ConfigError(f"no key '{args.name}' in force")
        print(f"revoked '{args.name}'")
        return 0
    for key in await keys.all():
        state = "revoked" if key.revoked_at else "in force"
        print(f"{key.name}\t{state}")
    return 0


def run_notify(args: argparse.Namespace) -> int:
    """The `notify` command: the event taken and started here; prints what became of it,
    as `GET /api/v1/events/{id}` tells it."""
    from palabre.api.delivery import EventDesk
    from palabre.api.keys import CLI_KEY
    from palabre.api.problems import Problem
    from palabre.api.queue import UNFINISHED
    from palabre.api.requests import read_event
    from palabre.api.starter import EventStarter
    from palabre.bootstrap import build_engine
    from palabre.starts import params_of

    settings = Settings.from_env()
    engine = build_engine([args.flows], settings)
    body: dict[str, Any] = {"event": args.event, "id": args.id or uuid.uuid4().hex, "to": args.to}
    body |= {"data": params_of(args.data)}
    body |= {k: v for k in ("channel", "lang", "ttl") if (v := getattr(args, k)) is not None}

    async def notify() -> dict[str, Any]:
        try:
            await engine.stores.open() if engine.stores else None
            desk = EventDesk(engine)
            request = read_event(body, settings.default_region, lambda n: bool(desk.flows_for(n)))
            await desk.take(CLI_KEY, request)
            await EventStarter(engine).start_now(CLI_KEY, request.id)
            found = await desk.queue.status(CLI_KEY, request.id)
            if found is None or found.status in UNFINISHED:  # an earlier one of theirs waits
                print("the event waits for a worker to start it", file=sys.stderr)
            return found.document() if found else {}
        finally:
            await engine.aclose()

    try:
        answer = asyncio.run(notify())
    except Problem as problem:
        print(json.dumps(problem.document(), ensure_ascii=False), file=sys.stderr)
        return 1
    print(json.dumps(answer))
    return 0
