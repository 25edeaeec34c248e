"""`palabre contacts consent-import FILE`: consent a school or a shop collected elsewhere
(a signed paper form, a registration desk), put in the consent ledger.

The file is read as a broadcast's audience is (palabre.broadcasts.audience: an address
column, in any of its names; other columns are ignored), and each valid line becomes
events from the source `import`, whose detail names the file and the line (`--note` says
more: "forms signed at enrolment, September 2026"). `--channel any` (the default) grants
on every channel: the SMS and the WhatsApp identity of a number alike.

A paper form never overrides a later word of the person: a contact whose latest word on
that purpose is a withdrawal (STOP, a provider's opt-out) is left as it is and counted,
unless `--override-withdrawals` says the form is newer than the STOP. Importing the same
file again records nothing new: each event's key is the file's digest, the purpose, the
channel, the line and the identity. `--withdraw` records withdrawals instead (a list of
parents who asked to stop on paper).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from palabre.addresses import PHONE_SCHEMES, read_address
from palabre.broadcasts.audience import Recipient, read_audience
from palabre.config import SECRET, Settings
from palabre.contacts import contact_hasher, contact_key
from palabre.errors import ConfigError
from palabre.purposes import BROADCAST, PURPOSES
from palabre.stores.consent import EVERY_CHANNEL

NOTE_CHARS = 200


@dataclass(frozen=True)
class Identity:
    """One contact key a line's consent is recorded under."""

    line: int
    scheme: str
    key: str


def add_consent_import(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `contacts consent-import` to the `contacts` command."""
    command = actions.add_parser(
        "consent-import", help="record consent collected elsewhere, from a CSV of addresses"
    )
    command.add_argument("file", type=Path, help="a CSV file with an address column")
    command.add_argument("--purpose", choices=PURPOSES, default=BROADCAST)
    command.add_argument(
        "--channel",
        choices=["whatsapp", "sms", "any"],
        default="any",
        help="the channel it was given for (any: every channel)",
    )
    command.add_argument("--note", default="", help="how it was collected (no personal data)")
    command.add_argument("--withdraw", action="store_true", help="record withdrawals instead")
    command.add_argument(
        "--override-withdrawals",
        action="store_true",
        help="grant even to contacts who withdrew since (their form is newer than their STOP)",
    )
    command.set_defaults(run=run_consent_import)


def run_consent_import(args: argparse.Namespace) -> int:
    """The `contacts consent-import` command; returns the exit status."""
    settings = Settings.from_env()
    if not settings.has_secret(SECRET):
        raise ConfigError(f"consent-import needs {SECRET}, the secret the contact keys use")
    if len(args.note) > NOTE_CHARS:
        raise ConfigError(f"--note is longer than {NOTE_CHARS} characters")
    hasher = contact_hasher(settings.secret(SECRET))
    audience = read_audience(
        args.file,
        region=settings.default_region,
        channel=None if args.channel == "any" else args.channel,
        languages=(),
        key_of=lambda address: contact_key(hasher, address),
    )
    for note in audience.notes:
        if "language" not in note:  # a language column is no concern of consent
            print(note)
    identities = [i for r in audience.sendable for i in _identities(r, hasher, args.channel)]
    lines, kept = asyncio.run(_record(settings, identities, args))
    verb = "withdrawn" if args.withdraw else "granted"
    print(f"{args.purpose} {verb} for {lines} of {len(audience.sendable)} valid lines")
    if kept:
        print(
            f"{kept} contacts withdrew since (STOP): not granted; pass "
            "--override-withdrawals only if their forms are newer than their STOP"
        )
    return 0


def _identities(recipient: Recipient, hasher: bytes, channel: str) -> list[Identity]:
    """The keys a line's consent goes under: its address on `channel`, or on `any`, the
    SMS and the WhatsApp identity of a phone number."""
    address = read_address(recipient.address)
    if channel != "any" or address.scheme not in PHONE_SCHEMES:
        return [Identity(recipient.line, address.scheme, contact_key(hasher, str(address)))]
    return [
        Identity(recipient.line, scheme, contact_key(hasher, f"{scheme}:{address.value}"))
        for scheme in PHONE_SCHEMES
    ]


async def _record(
    settings: Settings, identities: list[Identity], args: argparse.Namespace
) -> tuple[int, int]:
    """Record the events; returns for how many lines one was added, and how many contacts
    were left alone because they withdrew since."""
    from palabre.plugins import make_plugin_manager

    stores = make_plugin_manager().hook.make_stores(settings=settings, clock=time.time)
    if stores is None:
        raise ConfigError("importing consent needs the durable stores (the database)")
    digest = hashlib.sha256(args.file.read_bytes()).hexdigest()[:16]
    detail = args.file.name + (f": {args.note}" if args.note else "")
    lines: set[int] = set()
    try:
        await stores.open()
        withdrawn = set() if args.withdraw else await _withdrawn(stores, identities, args)
        for identity in identities:
            if identity.key in withdrawn and not args.override_withdrawals:
                continue
            if await _record_one(stores, identity, args, digest, detail):
                lines.add(identity.line)
    finally:
        await stores.aclose()
    return len(lines), 0 if args.override_withdrawals else len(withdrawn)


async def _withdrawn(stores: Any, identities: list[Identity], args: argparse.Namespace) -> set[str]:
    """The keys whose latest word on the purpose, on a channel concerned, is a withdrawal."""
    keys = [identity.key for identity in identities]
    channels = ["sms", "whatsapp"] if args.channel == "any" else [args.channel]
    found: set[str] = set()
    for channel in channels:
        latest = await stores.consent.latest_among(keys, channel, args.purpose)
        found |= {key for key, granted in latest.items() if not granted}
    return found


async def _record_one(
    stores: Any, identity: Identity, args: argparse.Namespace, digest: str, detail: str
) -> bool:
    channel = EVERY_CHANNEL if args.channel == "any" else args.channel
    what = "withdraw" if args.withdraw else "grant"
    key = f"import:{digest}:{args.purpose}:{channel}:{what}:{identity.line}:{identity.scheme}"
    return bool(
        await stores.consent.record(
            identity.key,
            args.purpose,
            not args.withdraw,
            "import",
            channel=channel,
            detail=f"{detail} (line {identity.line})",
            key=key,
        )
    )
