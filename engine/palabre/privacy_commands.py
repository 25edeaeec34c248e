"""`palabre contacts export ADDRESS` and `palabre contacts erase ADDRESS`: a person's data.

`export` writes everything Palabre holds about the contact as JSON (to a file with
`--output`, else to standard output): it is theirs, so it holds their address and texts.
`erase` removes it (palabre.privacy says what goes and what stays) after a confirmation,
or at once with `--yes`, and prints only counts and the contact's keyed hash.
`consent-import FILE` records consent collected elsewhere (palabre.consent_import).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from palabre.addresses import parse_address
from palabre.config import Settings
from palabre.consent_import import add_consent_import


def add_contacts_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `contacts export`, `erase` and `consent-import` to the `palabre` parser."""
    contacts = commands.add_parser(
        "contacts", help="export or erase what is held about a contact; import consent"
    )
    actions = contacts.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="everything held about a contact, as JSON")
    export.add_argument("address", help="the contact's address: +243..., whatsapp:+243...")
    export.add_argument("--output", type=Path, help="write the JSON to this file")
    export.add_argument("--flows", default="flows", help="the folder (or file) of flows")
    export.set_defaults(run=run_export)
    erase = actions.add_parser("erase", help="erase a contact's data, keeping the consent proof")
    erase.add_argument("address", help="the contact's address: +243..., whatsapp:+243...")
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    erase.add_argument("--flows", default="flows", help="the folder (or file) of flows")
    erase.set_defaults(run=run_erase)
    add_consent_import(actions)


def run_export(args: argparse.Namespace) -> int:
    """The `contacts export` command; returns the exit status."""
    from palabre.privacy import export_contact, export_json

    exported = _with_engine(args, export_contact)
    text = export_json(exported) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output} (contact {exported['contact']['key']})")
    else:
        sys.stdout.write(text)
    return 0


def run_erase(args: argparse.Namespace) -> int:
    """The `contacts erase` command; returns the exit status."""
    from palabre.privacy import erase_contact

    if not args.yes and not _confirmed():
        print("nothing erased (pass --yes to erase without a question)", file=sys.stderr)
        return 1
    done = _with_engine(args, erase_contact)
    print(
        f"erased contact {done.contact_key}: session {'deleted' if done.session else 'none'}, "
        f"{done.outbox_rows} messages blanked ({done.unsent_rows} never sent), "
        f"{done.addresses} addresses deleted; the consent history and a tombstone remain"
    )
    return 0


def _with_engine(args: argparse.Namespace, work: Callable[[Any, str], Awaitable[Any]]) -> Any:
    from palabre.bootstrap import build_engine

    settings = Settings.from_env()
    address = str(parse_address(args.address, settings.default_region))
    engine = build_engine([args.flows], settings)

    async def run() -> Any:
        try:
            return await work(engine, address)
        finally:
            await engine.aclose()

    return asyncio.run(run())


def _confirmed() -> bool:
    if not sys.stdin.isatty():
        return False
    answer = input("Erase everything held about this contact? This cannot be undone. [y/N] ")
    return answer.strip().lower() in ("y", "yes", "o", "oui")
