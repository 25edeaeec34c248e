"""`palabre start FLOW --to ADDRESS [--param k=v]`: begin a flow for a contact who wrote nothing.

The engine runs the flow's first turn (`Engine.start`) and its messages become outbox rows
(kind `start`); the worker of `palabre serve` or `palabre worker` sends them, within the
rate limits, and retries them. The command only queues: it prints the rows' ids, never the
address or the text.
"""

from __future__ import annotations

import argparse
import asyncio

from palabre.addresses import WHATSAPP_USER, Address, parse_address
from palabre.config import Settings
from palabre.errors import ConfigError
from palabre.runtime.engine import Engine
from palabre.runtime.entrances import Contact

TRANSPORTS = ("twilio", "meta_cloud")


def add_start_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `start` to the `palabre` parser."""
    start = commands.add_parser("start", help="begin a flow for a contact (queued in the outbox)")
    start.add_argument("flow", help="the id of the flow to start")
    start.add_argument("--to", required=True, help="the address: +243..., whatsapp:+243...")
    start.add_argument(
        "--param", action="append", default=[], metavar="K=V", help="a value for the flow"
    )
    start.add_argument("--transport", choices=TRANSPORTS, help="the transport that sends it")
    start.add_argument("--lang", help="the contact's language, when known")
    start.add_argument("--id", help="an idempotency key: the same key never queues twice")
    start.add_argument("--flows", default="flows", help="the folder (or file) of flows")
    start.set_defaults(run=run_start)


def run_start(args: argparse.Namespace) -> int:
    """The `start` command; returns the exit status."""
    from palabre.bootstrap import build_engine

    settings = Settings.from_env()
    params = params_of(args.param)
    address = parse_address(args.to, settings.default_region)
    transport = args.transport or default_transport(address, settings)
    engine = build_engine([args.flows], settings)
    if args.flow not in engine.flows:
        known = ", ".join(sorted(engine.flows))
        raise ConfigError(f"no flow '{args.flow}' in {args.flows} (known: {known})")
    contact = Contact(str(address), transport, address.channel, args.lang)

    async def queue() -> list[str]:
        try:
            return await start_and_queue(engine, contact, args.flow, params, args.id)
        finally:
            await engine.aclose()

    uids = asyncio.run(queue())
    for uid in uids:
        print(f"queued {uid} ({transport})")
    return 0


async def start_and_queue(
    engine: Engine, contact: Contact, flow_id: str, params: dict[str, str], key: str | None
) -> list[str]:
    """Run the flow's first turn for `contact`; its messages are queued as it commits.
    Returns their uids. The same `key` (an idempotency key) never starts it twice."""
    if engine.stores is None:
        raise ConfigError("starting a flow needs the durable stores (the outbox)")
    reply = await engine.start(contact, flow_id, params, key=key)
    return reply.uids


def default_transport(address: Address, settings: Settings) -> str:
    """Twilio for SMS; Meta for WhatsApp user ids, and for WhatsApp when Meta is set up."""
    if address.scheme == "tel":
        return "twilio"
    if address.scheme == WHATSAPP_USER or settings.option("META_PHONE_NUMBER_ID"):
        return "meta_cloud"
    return "twilio"


def params_of(pairs: list[str]) -> dict[str, str]:
    """The `--param NAME=VALUE` pairs of a command, as a mapping."""
    params = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name.strip():
            raise ConfigError(f"--param {pair!r} should be NAME=VALUE")
        params[name.strip()] = value
    return params
