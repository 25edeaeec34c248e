"""What Palabre holds about one contact: exported whole, or erased (GDPR articles 15, 17).

Everything about a contact is filed under the keyed hash of their address (palabre.contacts),
so one key finds it all:
- the session, in the session store (Redis or embedded): their answers so far;
- the outbox rows: each message sent to them, with its text and address until retention
  blanks them, and its status, attempts and provider id;
- their lines in broadcast audiences (the address and parameters until the line starts);
- the events the API took for them (the address and the event's data until the flows run);
- the message log (provider ids and statuses), the consent ledger, and the contact and
  address rows (`contacts`, `contact_addresses`).

`export_contact` returns all of it as one JSON-ready mapping. `erase_contact` deletes the
session and the address rows, blanks the address and text of every outbox row (rows not
yet sent end `skipped` with the code `erased`) and the address and data of every event
(one not yet started ends `failed`), and leaves under the keyed hash only what proves
what happened: statuses, the consent ledger (the proof of what they agreed to) and
a tombstone (`erasures`). The erasure withdraws broadcasts, so that no broadcast, not even
one under way, reaches them again before they opt in anew. A later message from the same
address starts afresh.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select, update

from palabre.api.queue import BLANK, FAILED, UNFINISHED, request_of
from palabre.db.inserts import insert_for
from palabre.db.schema import (
    api_events,
    broadcast_recipients,
    contact_addresses,
    contacts,
    erasures,
    messages,
    outbox,
    whatsapp_windows,
)
from palabre.errors import ConfigError
from palabre.outbox.statuses import HELD, INLINE, QUEUED, SKIPPED
from palabre.outbox.store import PURGED
from palabre.purposes import BROADCAST
from palabre.runtime.engine import Engine

ERASED = "erased"  # the error code of a row erased before it was sent
UNSENT = (HELD, QUEUED, INLINE)


@dataclass(frozen=True)
class Erasure:
    """What `erase_contact` did, in counts (it never says more about the contact)."""

    contact_key: str
    session: bool
    outbox_rows: int
    unsent_rows: int
    addresses: int


async def export_contact(engine: Engine, address: str) -> dict[str, Any]:
    """Everything held about the contact at `address`, as a JSON-ready mapping."""
    stores, key = _stores(engine), engine.contact_key(address)
    rows = await stores.database.run(_rows_of, key)
    history = await stores.consent.history(key)
    return {
        "contact": {"address": address, "key": key, **rows["contact"]},
        "addresses": rows["addresses"],
        "session": await engine.store.get(key),
        "consent": [vars(event) for event in history],
        "messages": rows["outbox"],
        "deliveries": rows["log"],
        "broadcasts": rows["broadcasts"],
        "events": rows["events"],
        "whatsapp_last_wrote_at": rows["whatsapp_last_wrote_at"],
        "erased_at": rows["erased_at"],
    }


async def erase_contact(engine: Engine, address: str) -> Erasure:
    """Erase the contact at `address`: see the module for what goes and what stays."""
    stores, key = _stores(engine), engine.contact_key(address)
    async with engine.store.locked(key) as lease:  # no turn of theirs writes meanwhile
        had_session = await engine.store.get(key) is not None
        await engine.store.commit(key, None, lease=lease)
    now = engine.clock()
    counts = await stores.database.run(_erase, key, now, stores.database.dialect)
    # No broadcast reaches them again until they opt in anew (nor one already under way).
    await stores.consent.record(key, BROADCAST, False, "agent", detail="erased on request")
    return Erasure(key, had_session, *counts)


def export_json(exported: dict[str, Any]) -> str:
    """The export as the file a person is given: indented UTF-8 JSON."""
    return json.dumps(exported, ensure_ascii=False, indent=2, sort_keys=True, default=str)


def _stores(engine: Engine) -> Any:
    if engine.stores is None:
        raise ConfigError("exporting or erasing a contact needs the durable stores")
    return engine.stores


def _rows_of(conn: Connection, key: str) -> dict[str, Any]:
    """The contact's rows in every table of the database that names them."""
    found = conn.execute(
        select(contact_addresses.c.contact_id).where(contact_addresses.c.key == key)
    ).scalar_one_or_none()
    contact: dict[str, Any] = {}
    addresses: list[dict[str, Any]] = []
    if found is not None:
        person = conn.execute(select(contacts).where(contacts.c.id == found)).mappings().first()
        contact = dict(person) if person else {}
        query = select(contact_addresses).where(contact_addresses.c.contact_id == found)
        addresses = [dict(r) for r in conn.execute(query).mappings()]
    mine = outbox.c.contact_key == key
    sent = [
        dict(r) for r in conn.execute(select(outbox).where(mine).order_by(outbox.c.id)).mappings()
    ]
    for row in sent:
        row["payload"] = json.loads(row["payload"] or PURGED)
    lines = select(broadcast_recipients).where(broadcast_recipients.c.contact_key == key)
    audience = [dict(r) for r in conn.execute(lines).mappings()]
    for line in audience:
        line["params"] = json.loads(line["params"] or "{}")
    taken = select(api_events).where(api_events.c.contact_key == key).order_by(api_events.c.id)
    events = [dict(r) for r in conn.execute(taken).mappings()]
    for event in events:
        event["request"] = request_of(event["request"])
    window = select(whatsapp_windows.c.transport, whatsapp_windows.c.last_inbound_at).where(
        whatsapp_windows.c.contact_key == key
    )
    logged = select(messages).where(messages.c.contact_key == key)
    erased = select(erasures.c.at).where(erasures.c.contact_key == key)
    return {
        "contact": contact,
        "addresses": addresses,
        "outbox": sent,
        "broadcasts": audience,
        "events": events,
        "whatsapp_last_wrote_at": {via: at for via, at in conn.execute(window).all()},
        "log": [dict(r) for r in conn.execute(logged).mappings()],
        "erased_at": conn.execute(erased).scalar_one_or_none(),
    }


def _erase(conn: Connection, key: str, now: float, dialect: str) -> tuple[int, int, int]:
    """Blank the outbox rows, delete the addresses, leave the tombstone; in one transaction."""
    mine = outbox.c.contact_key == key
    unsent = conn.execute(
        update(outbox)
        .where(mine, outbox.c.status.in_(UNSENT))
        .values(status=SKIPPED, error_code=ERASED, last_error="the contact was erased")
    ).rowcount
    blanked = conn.execute(
        update(outbox).where(mine).values(address="", payload=PURGED, updated_at=now)
    ).rowcount
    _erase_audience(conn, key)
    _erase_events(conn, key, now)
    conn.execute(delete(whatsapp_windows).where(whatsapp_windows.c.contact_key == key))
    owner = select(contact_addresses.c.contact_id).where(contact_addresses.c.key == key)
    contact_id = conn.execute(owner).scalar_one_or_none()
    removed = 0
    if contact_id is not None:
        links = delete(contact_addresses).where(contact_addresses.c.contact_id == contact_id)
        removed = conn.execute(links).rowcount
        conn.execute(update(contacts).where(contacts.c.id == contact_id).values(language=None))
    tombstone = insert_for(dialect, erasures).values(contact_key=key, at=now)
    conn.execute(tombstone.on_conflict_do_update(index_elements=["contact_key"], set_={"at": now}))
    return blanked, unsent, removed


def _erase_events(conn: Connection, key: str, now: float) -> None:
    """Blank the events taken for the contact; one whose flows have not run never runs."""
    mine = api_events.c.contact_key == key
    waiting = mine & api_events.c.status.in_(UNFINISHED)
    gone = {"status": FAILED, "error": "the contact was erased", "claimed_by": None}
    conn.execute(update(api_events).where(waiting).values(**gone, updated_at=now))
    conn.execute(update(api_events).where(mine).values(request=BLANK))


def _erase_audience(conn: Connection, key: str) -> None:
    """Blank the contact's lines in broadcast audiences; a line not started yet never is."""
    mine = broadcast_recipients.c.contact_key == key
    waiting = mine & broadcast_recipients.c.skip.is_(None)
    waiting &= broadcast_recipients.c.started_at.is_(None)
    conn.execute(
        update(broadcast_recipients)
        .where(waiting)
        .values(skip=ERASED, detail="the contact was erased")
    )
    conn.execute(update(broadcast_recipients).where(mine).values(address="", params="{}"))
