"""`palabre broadcast`: one flow started for an audience read from a CSV file.

    palabre broadcast FLOW --to contacts.csv [--channel whatsapp|sms] [--param K=V]
                           [--purpose broadcast|service] [--transport NAME] [--yes]
    palabre broadcast list             the newest broadcasts, and where each stands
    palabre broadcast resume ID        go on after Ctrl-C or a stopped process
    palabre broadcast status ID        counts by status, the failures and their reasons
    palabre broadcast retry-failed ID  queue again the messages that failed for a reason
                                       that may pass (the provider down, a timeout)

The command reads and checks the audience, prints what it will cost and asks before it
starts; then it feeds the outbox (palabre.broadcasts.sending) while the workers of
`palabre serve` or `palabre worker` send, and shows the progress. A flow named like one
of the actions (list, resume, status, retry-failed) cannot be broadcast: rename it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import secrets
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from palabre.broadcasts.audience import read_audience
from palabre.broadcasts.display import Live, cost_lines, list_line, status_lines
from palabre.broadcasts.planning import Plan, plan_broadcast, prepared
from palabre.broadcasts.sending import Feeder
from palabre.broadcasts.store import Broadcast, BroadcastStore
from palabre.config import Settings
from palabre.errors import ConfigError
from palabre.purposes import BROADCAST, PURPOSES
from palabre.starts import TRANSPORTS, params_of

ACTIONS = ("resume", "status", "retry-failed")
SHOWN_NOTES = 20  # line notes printed before the summary; `status` lists them all


def add_broadcast_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `broadcast` to the `palabre` parser."""
    broadcast = commands.add_parser(
        "broadcast", help="start a flow for every contact of a CSV file (rate-limited, resumable)"
    )
    broadcast.add_argument(
        "what", nargs="+", metavar="FLOW | list | resume ID | status ID | retry-failed ID"
    )
    broadcast.add_argument(
        "--to", metavar="CSV", help="the audience: a column address, optional language, parameters"
    )
    broadcast.add_argument(
        "--channel", choices=["whatsapp", "sms"], help="send every line on this channel"
    )
    broadcast.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="K=V",
        help="a value for the flow, for everyone",
    )
    broadcast.add_argument(
        "--purpose", choices=PURPOSES, default=BROADCAST, help="the consent it needs (broadcast)"
    )
    broadcast.add_argument("--transport", choices=TRANSPORTS, help="the transport that sends it")
    broadcast.add_argument("--yes", action="store_true", help="start without asking")
    broadcast.add_argument(
        "--again", action="store_true", help="send a broadcast already sent once more"
    )
    broadcast.add_argument("--json", action="store_true", help="status as JSON")
    broadcast.add_argument("--flows", default="flows", help="the folder (or file) of flows")
    broadcast.set_defaults(run=run_broadcast)


def run_broadcast(args: argparse.Namespace) -> int:
    """The `broadcast` command; returns the exit status."""
    action, *rest = args.what
    if action == "list" and not rest:
        return asyncio.run(_list(args))
    if action in ACTIONS:
        if len(rest) != 1:
            raise ConfigError(f"palabre broadcast {action} takes one broadcast id")
        return asyncio.run(_ACTIONS[action](args, rest[0]))
    if rest:
        raise ConfigError(f"palabre broadcast takes one flow, not {len(args.what)} words")
    if not args.to:
        raise ConfigError("palabre broadcast FLOW needs --to contacts.csv (the audience)")
    if not args.yes and not sys.stdin.isatty():  # said now, not after a long dry run
        raise ConfigError("no terminal to ask: pass --yes to start the broadcast")
    params = params_of(args.param)
    plan = asyncio.run(_plan(args, action, params))
    if plan is None:
        return 1
    # Asked outside the event loop, so that Ctrl-C at the question simply ends it.
    if not args.yes and not _confirmed():
        print("nothing was started")
        return 1
    return asyncio.run(_start(args, _broadcast(args, action, params, plan), plan))


async def _plan(args: argparse.Namespace, flow_id: str, params: dict[str, str]) -> Plan | None:
    """Read the audience, dry-run the flow, print what is wrong and what it costs."""
    settings = Settings.from_env()
    async with prepared(args.flows, settings) as (engine, store):
        flow = engine.flows.get(flow_id)
        if flow is None:
            known = ", ".join(sorted(engine.flows))
            raise ConfigError(f"no flow '{flow_id}' in {args.flows} (known: {known})")
        audience = read_audience(
            Path(args.to),
            region=settings.default_region,
            channel=args.channel,
            languages=flow.settings.locales,
            key_of=engine.contact_key,
        )
        plan = await plan_broadcast(engine, settings, flow_id, params, audience, args)
        await _not_again(store, args, flow_id, params)
    for note in plan.notes[:SHOWN_NOTES]:
        print(note)
    if len(plan.notes) > SHOWN_NOTES:
        print(f"... and {len(plan.notes) - SHOWN_NOTES} more lines (the status lists them)")
    for line in cost_lines(plan.estimate, plan.counts, plan.seconds, plan.rate):
        print(line)
    for warning in plan.warnings:
        print(warning)
    if not plan.estimate.sendable:
        print("nobody to send to: nothing was started")
        return None
    return plan


async def _start(args: argparse.Namespace, broadcast: Broadcast, plan: Plan) -> int:
    """Snapshot the audience, then feed the outbox until the end or a stop."""
    settings = Settings.from_env()
    async with prepared(args.flows, settings) as (engine, store):
        feeder = Feeder(engine, store, broadcast, plan.transport_of, ahead=plan.ahead)
        stopped = _stop_on_signals(feeder)  # from here on, a signal is a pause
        print(
            f"broadcast {broadcast.id} started; "
            f"after a stop: palabre broadcast resume {broadcast.id}",
            flush=True,  # a process killed later has said which broadcast to resume
        )
        await store.create(broadcast, plan.audience.recipients)
        return await _feed(feeder, plan, stopped)


async def _not_again(
    store: BroadcastStore, args: argparse.Namespace, flow_id: str, params: dict[str, str]
) -> None:
    """Refuse to start the same broadcast twice by mistake (a command run again)."""
    before = await store.same_as(fingerprint_of(args, flow_id, params))
    if before is None or args.again:
        return
    when = datetime.fromtimestamp(before.created_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    raise ConfigError(
        f"this broadcast (the same flow, file and parameters) was started on {when} as "
        f"{before.id}: `palabre broadcast resume {before.id}` goes on with it, "
        "`--again` sends it once more"
    )


async def _resume(args: argparse.Namespace, broadcast_id: str) -> int:
    settings = Settings.from_env()
    async with prepared(args.flows, settings) as (engine, store):
        broadcast = await _find(store, broadcast_id)
        if broadcast.flow not in engine.flows:
            raise ConfigError(
                f"broadcast {broadcast.id} starts the flow '{broadcast.flow}', which is not in "
                f"{args.flows}: pass the --flows it was started with"
            )
        counts = await store.progress(broadcast.id)
        sample = next(iter(await store.waiting(broadcast.id, 1)), None)
        plan = Plan.for_resume(settings, broadcast, counts, sample)
        feeder = Feeder(engine, store, broadcast, plan.transport_of, ahead=plan.ahead)
        return await _feed(feeder, plan, _stop_on_signals(feeder))


async def _status(args: argparse.Namespace, broadcast_id: str) -> int:
    settings = Settings.from_env()
    async with prepared(args.flows, settings, engine_needed=False) as (_, store):
        broadcast = await _find(store, broadcast_id)
        counts = await store.progress(broadcast.id)
        failures = await store.failures(broadcast.id, limit=1000 if args.json else 50)
    if args.json:
        print(json.dumps(_status_json(broadcast, counts, failures), ensure_ascii=False))
    else:
        for line in status_lines(broadcast, counts, failures):
            print(line)
    return 0


async def _list(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    async with prepared(args.flows, settings, engine_needed=False) as (_, store):
        shown = [(b, await store.progress(b.id)) for b in await store.latest()]
    for broadcast, counts in shown:
        print(list_line(broadcast, counts))
    if not shown:
        print("no broadcast yet")
    return 0


async def _retry_failed(args: argparse.Namespace, broadcast_id: str) -> int:
    settings = Settings.from_env()
    async with prepared(args.flows, settings, engine_needed=False) as (_, store):
        broadcast = await _find(store, broadcast_id)
        again = await store.retry_failed(broadcast.id)
    print(
        f"{again} failed messages queued again; the workers send them "
        f"(palabre broadcast status {broadcast.id})"
    )
    return 0


_ACTIONS: dict[str, Any] = {"resume": _resume, "status": _status, "retry-failed": _retry_failed}


def _stop_on_signals(feeder: Feeder) -> list[int]:
    """Ctrl-C and SIGTERM pause the feeder; the list gets the signal, for the exit status."""
    stopped: list[int] = []
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):

        def stop(sig: int = sig) -> None:
            stopped.append(sig)
            feeder.stop.set()

        loop.add_signal_handler(sig, stop)
    return stopped


async def _feed(feeder: Feeder, plan: Plan, stopped: list[int]) -> int:
    broadcast = feeder.broadcast
    with Live(broadcast, plan.expected, plan.per_second) as live:
        counts = await feeder.run(live.show)
    if counts.finished:
        print(f"broadcast {broadcast.id} finished: palabre broadcast status {broadcast.id}")
        return 0
    print(
        f"broadcast {broadcast.id} paused: {counts.waiting} lines not started, "
        f"{counts.unsent} messages still queued (the workers send them). "
        f"Go on with: palabre broadcast resume {broadcast.id}"
    )
    return 128 + (stopped[0] if stopped else signal.SIGINT)


async def _find(store: BroadcastStore, broadcast_id: str) -> Broadcast:
    broadcast = await store.get(broadcast_id)
    if broadcast is None:
        raise ConfigError(f"no broadcast '{broadcast_id}' (its id is printed when it starts)")
    return broadcast


def _broadcast(
    args: argparse.Namespace, flow_id: str, params: dict[str, str], plan: Plan
) -> Broadcast:
    return Broadcast(
        id=secrets.token_hex(4),
        flow=flow_id,
        channel=args.channel or "",
        transport=args.transport or "",
        purpose=args.purpose,
        params=params,
        source=Path(args.to).name,
        recipients=plan.estimate.sendable,
        created_at=time.time(),
        fingerprint=fingerprint_of(args, flow_id, params),
    )


def fingerprint_of(args: argparse.Namespace, flow_id: str, params: dict[str, str]) -> str:
    """What tells the same broadcast started twice: its flow, options, parameters, file."""
    digest = hashlib.sha256(Path(args.to).read_bytes()).hexdigest()
    what = [flow_id, args.channel, args.transport, args.purpose, sorted(params.items()), digest]
    return hashlib.sha256(json.dumps(what, ensure_ascii=False).encode()).hexdigest()


def _confirmed() -> bool:
    return input("Start it? [y/N] ").strip().lower() in ("y", "yes", "o", "oui")


def _status_json(broadcast: Broadcast, counts: Any, failures: list[Any]) -> dict[str, Any]:
    return {
        "id": broadcast.id,
        "flow": broadcast.flow,
        "purpose": broadcast.purpose,
        "lines": counts.lines,
        "finished": counts.finished,
        "waiting": counts.waiting,
        "skipped": counts.skipped,
        "messages": counts.messages,
        "failures": [vars(failure) for failure in failures],
    }
