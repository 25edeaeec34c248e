"""What `palabre messages` shows: outbox rows, newest first, as a table or as JSON Lines.

A row is told by its time, transport, status, attempts, error, provider id, uid, kind,
consent purpose and contact key: never a body or an address. `--contact ADDRESS` is read
as the engine reads an address and hashed into its contact key with PALABRE_SECRET
(palabre.contacts), so the rows are found by key and the address is never printed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

from palabre.addresses import Address, InvalidAddress, parse_address, read_address
from palabre.config import SECRET, Settings
from palabre.contacts import contact_hasher, contact_key
from palabre.errors import ConfigError
from palabre.outbox.rows import Row
from palabre.outbox.statuses import ALL, NEEDS_ATTENTION

# Named again, beside the ranked ones: the statuses a provider reports, however ranked.
KNOWN_STATUSES = tuple(dict.fromkeys((*ALL, "undelivered", "delivered", "read", "skipped")))

# (heading, format spec) of each column; the error, free text, comes last.
TABLE = (
    ("time", "<20"),
    ("uid", "<32"),
    ("channel", "<10"),
    ("kind", "<9"),
    ("purpose", "<9"),
    ("status", "<11"),
    ("tries", ">5"),
    ("contact", "<32"),
    ("provider id", "<34"),
    ("error", ""),
)
JSON_FIELDS = (
    "created_at",
    "channel",
    "status",
    "attempts",
    "error_code",
    "last_error",
    "provider_id",
    "uid",
    "kind",
    "purpose",
    "contact_key",
)


def statuses_wanted(which: str | None, status: str | None) -> tuple[str, ...] | None:
    """The statuses to list: those needing a look for `failed`, the one `--status` names,
    or None for every status."""
    if which == "failed":
        return NEEDS_ATTENTION
    return (status,) if status else None


def contact_key_of(written: str, settings: Settings) -> str:
    """The contact key of the address `--contact` names, made as the engine makes it:
    the canonical address (`whatsapp:+243...`), hashed with PALABRE_SECRET."""
    if not settings.has_secret(SECRET):
        raise ConfigError(
            f"--contact needs {SECRET}, the secret the contact keys were made with: set it "
            "in the environment or in .env, as the deployment's engine has it"
        )
    try:
        address = _address_of(written, settings.default_region)
    except InvalidAddress as exc:  # its message never repeats the address
        raise ConfigError(
            f"--contact: {exc}; write it as the engine does, like +243812345678 or "
            "whatsapp:+243812345678"
        ) from None
    return contact_key(contact_hasher(settings.secret(SECRET)), str(address))


def _address_of(written: str, region: str | None) -> Address:
    try:
        return parse_address(written, region)
    except InvalidAddress:
        # A number a provider vouched for may be newer than phonenumbers' data: the engine
        # keeps it as written (palabre.addresses.provider_phone), so look for it as such.
        bare = written.strip()
        return read_address(bare if ":" in bare else f"tel:{bare}")


def header() -> str:
    """The first line of the table, its headings above `line_of`'s columns."""
    return _joined(tuple(heading for heading, _ in TABLE))


def line_of(row: Row) -> str:
    """One row as the table of `palabre messages` prints it."""
    error = " ".join(part for part in (row.error_code, row.last_error) if part) or "-"
    cells = (
        utc_time(row.created_at),
        row.uid,
        row.channel,
        row.kind,
        row.purpose,
        row.status,
        row.attempts,
        row.contact_key,
        row.provider_id or "-",
        error,
    )
    return _joined(cells)


def json_line_of(row: Row) -> str:
    """One row as `palabre messages --json` prints it: a JSON object on one line, its
    times in seconds since the epoch."""
    return json.dumps({name: getattr(row, name) for name in JSON_FIELDS}, ensure_ascii=False)


def lines_of(rows: list[Row], *, as_json: bool) -> Iterator[str]:
    """What `palabre messages` prints for `rows`: JSON Lines, or the table with its header."""
    if as_json:
        yield from (json_line_of(row) for row in rows)
        return
    yield header()
    yield from (line_of(row) for row in rows)


def utc_time(timestamp: float) -> str:
    """A time as ISO 8601 in UTC, to the second: 2025-03-01T14:05:09Z."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _joined(cells: tuple[object, ...]) -> str:
    specs = (spec for _, spec in TABLE)
    return "  ".join(format(cell, spec) for cell, spec in zip(cells, specs, strict=True))
