"""The consent ledger: who agreed to what, on which channel, and how we know.

Consent is kept as events, never edited: each one says that a contact (its keyed hash)
granted or withdrew a purpose on a channel, from a source, at a time. The state of a
contact x channel x purpose is its latest event, on that channel or on every channel
("*"). With no event at all:
- `service` (replies, transactional notifications) is granted: the contact wrote to us
  or is a party to the transaction;
- `broadcast` (bulk and marketing) is not: it needs an opt-in.

Sources: `keyword` (STOP / START), `flow` (a step or an action), `import`, `api`, `agent`,
`provider` (Twilio's 21610, Meta's 131050). `detail` names which (the keyword's kind, the
flow, the provider's code), never the contact's words. Each event has a key: an event
recorded again under the same key (a redelivered message) is recorded once.

The outbox asks `allows` before every send (palabre.outbox.worker); a message without the
consent it needs never reaches a provider and ends `skipped` with `no_consent`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import bindparam, or_, select

from palabre.db.batches import group_commit
from palabre.db.database import Database
from palabre.db.driver import DriverStatement
from palabre.db.inserts import insert_new
from palabre.db.schema import consent_events as events
from palabre.purposes import BROADCAST, PURPOSES, SERVICE

SOURCES = ("keyword", "flow", "import", "api", "agent", "provider")
EVERY_CHANNEL = "*"
GRANTED_BY_DEFAULT = {SERVICE: True, BROADCAST: False}


@dataclass(frozen=True)
class ConsentEvent:
    """One event of the ledger, as `history` lists it."""

    channel: str
    purpose: str
    granted: bool
    source: str
    detail: str | None
    at: float


# `allows` runs before every send: built once, and one trip on the driver's cursor (through
# an AsyncConnection, SQLite took a dozen trips to aiosqlite's thread).
_LATEST = DriverStatement(
    select(events.c.granted)
    .where(
        events.c.contact_key == bindparam("b_contact"),
        events.c.purpose == bindparam("b_purpose"),
        or_(events.c.channel == bindparam("b_channel"), events.c.channel == EVERY_CHANNEL),
    )
    .order_by(events.c.id.desc())
    .limit(1)
)
_LATEST_AMONG = (
    select(events.c.contact_key, events.c.granted)
    .where(
        events.c.purpose == bindparam("b_purpose"),
        or_(events.c.channel == bindparam("b_channel"), events.c.channel == EVERY_CHANNEL),
    )
    .order_by(events.c.id)
)
_HISTORY = (
    select(
        events.c.channel,
        events.c.purpose,
        events.c.granted,
        events.c.source,
        events.c.detail,
        events.c.at,
    )
    .where(events.c.contact_key == bindparam("b_contact"))
    .order_by(events.c.id)
)


class ConsentLedger:
    """The append-only consent events on the database, and the state they add up to."""

    def __init__(self, database: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = database
        self._clock = clock

    async def record(
        self,
        contact_key: str,
        purpose: str,
        granted: bool,
        source: str,
        *,
        channel: str = EVERY_CHANNEL,
        detail: str | None = None,
        key: str | None = None,
    ) -> bool:
        """Append one event; False when an event with the same `key` is there already."""
        if purpose not in PURPOSES:
            raise ValueError(f"unknown consent purpose {purpose!r} (known: {', '.join(PURPOSES)})")
        if source not in SOURCES:
            raise ValueError(f"unknown consent source {source!r} (known: {', '.join(SOURCES)})")
        row = {
            "event_key": key or uuid.uuid4().hex,
            "contact_key": contact_key,
            "channel": channel or EVERY_CHANNEL,
            "purpose": purpose,
            "granted": int(granted),
            "source": source,
            "detail": detail,
            "at": self._clock(),
        }
        statement = insert_new(self._db.dialect, events)
        added = await group_commit(self._db).run(
            lambda conn: conn.execute(statement, row).first() is not None
        )
        return bool(added)

    async def allows(self, contact_key: str, channel: str, purpose: str) -> bool:
        """Whether a message of `purpose` may go to the contact on `channel` now."""
        latest = await self._latest(contact_key, channel, purpose)
        return GRANTED_BY_DEFAULT[purpose] if latest is None else latest

    async def allowed(self, contact_keys: list[str], channel: str, purpose: str) -> set[str]:
        """The keys among `contact_keys` that `purpose` may reach on `channel` now: what
        `allows` says of each, in a query per 500 keys (a broadcast's audience)."""
        latest = await self.latest_among(contact_keys, channel, purpose)
        default = GRANTED_BY_DEFAULT[purpose]
        return {key for key in contact_keys if latest.get(key, default)}

    async def latest_among(
        self, contact_keys: list[str], channel: str, purpose: str
    ) -> dict[str, bool]:
        """The latest grant (True) or withdrawal (False) of each key that has one."""
        latest: dict[str, bool] = {}
        values = {"b_purpose": purpose, "b_channel": channel}
        async with self._db.read() as conn:
            for first in range(0, len(contact_keys), 500):
                chunk = contact_keys[first : first + 500]
                query = _LATEST_AMONG.where(events.c.contact_key.in_(chunk))
                for key, granted in (await conn.execute(query, values)).all():
                    latest[key] = bool(granted)  # in id order: the latest wins
        return latest

    async def withdrawn(self, contact_key: str, channel: str, purpose: str) -> bool:
        """Whether the contact's latest word on `purpose` (on `channel`) was a withdrawal."""
        return await self._latest(contact_key, channel, purpose) is False

    async def _latest(self, contact_key: str, channel: str, purpose: str) -> bool | None:
        """The latest event's grant on `channel` or every channel; None when there is none."""
        values = {"b_contact": contact_key, "b_purpose": purpose, "b_channel": channel}
        latest = await self._db.run(_LATEST.first, values)
        return None if latest is None else bool(latest[0])

    async def history(self, contact_key: str) -> list[ConsentEvent]:
        """Every event of the contact, oldest first: the proof of what they agreed to."""
        async with self._db.read() as conn:
            rows = (await conn.execute(_HISTORY, {"b_contact": contact_key})).all()
        return [ConsentEvent(c, p, bool(g), s, d, at) for c, p, g, s, d, at in rows]


def channel_of(address: str, channel: str = "") -> str:
    """The channel consent is kept for: the message's own ("whatsapp", "sms"), else what
    its address says (a WhatsApp address, or a phone number: SMS)."""
    if channel:
        return channel
    if address.startswith(("whatsapp:", "whatsapp-user:")):
        return "whatsapp"
    return "sms" if address.startswith(("+", "tel:")) else EVERY_CHANNEL
