"""`palabre contacts consent-import FILE`: consent a school or a shop collected elsewhere
(a signed paper form, a registration desk), put in the consent ledger.

The file is read as a broadcast's audience is (palabre.broadcasts.audience: an address
column, in any of its names; other columns are ignored), and each valid line becomes one
event from the source `import`, whose detail names the file and the line (`--note` says
more: "forms signed at enrolment, September 2026"). Importing the same file again records
nothing new: each event's key is the file's digest and the line. `--withdraw` records
withdrawals instead (a list of parents who asked to stop on paper).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import time
from pathlib import Path

from palabre.broadcasts.audience import Recipient, read_audience
from palabre.config import SECRET, Settings
from palabre.contacts import contact_hasher, contact_key
from palabre.errors import ConfigError
from palabre.purposes import BROADCAST, PURPOSES
from palabre.stores.consent import EVERY_CHANNEL, channel_of

NOTE_CHARS = 200


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
    command.set_defaults(run=run_consent_import)


def run_consent_import(args: argparse.Namespace) -> int:
    """The `contacts consent-import` command; returns the exit status."""
    settings = Settings.from_env()
    if not settings.has_secret(SECRET):
        raise ConfigError(f"consent-import needs {SECRET}, the secret the contact keys use")
    if len(args.note) > NOTE_CHARS:
        raise ConfigError(f"--note is longer than {NOTE_CHARS} characters")
    hasher = contact_hasher(settings.secret(SECRET))
    channel = None if args.channel == "any" else args.channel
    audience = read_audience(
        args.file,
        region=settings.default_region,
        channel=channel,
        languages=(),
        key_of=lambda address: contact_key(hasher, address),
    )
    for note in audience.notes:
        if "language" not in note:  # a language column is no concern of consent
            print(note)
    digest = hashlib.sha256(args.file.read_bytes()).hexdigest()[:16]
    added = asyncio.run(_record(settings, audience.sendable, args, digest, channel))
    verb = "withdrawals" if args.withdraw else "grants"
    print(f"{added} {args.purpose} {verb} recorded, from {len(audience.sendable)} valid lines")
    return 0


async def _record(
    settings: Settings,
    lines: list[Recipient],
    args: argparse.Namespace,
    digest: str,
    channel: str | None,
) -> int:
    from palabre.plugins import make_plugin_manager

    stores = make_plugin_manager().hook.make_stores(settings=settings, clock=time.time)
    if stores is None:
        raise ConfigError("importing consent needs the durable stores (the database)")
    detail = f"{args.file.name}" + (f": {args.note}" if args.note else "")
    added = 0
    try:
        await stores.open()
        for recipient in lines:
            added += await stores.consent.record(
                recipient.contact_key,
                args.purpose,
                not args.withdraw,
                "import",
                channel=channel_of(recipient.address) if channel else EVERY_CHANNEL,
                detail=f"{detail} (line {recipient.line})",
                key=f"import:{digest}:{args.purpose}:{args.withdraw}:{recipient.line}",
            )
    finally:
        await stores.aclose()
    return added
