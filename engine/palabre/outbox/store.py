"""`Outbox`: every outbound message is a row before it leaves, and the row is its log.

The conversation service (palabre.runtime.engine) calls `enqueue` before it commits a turn;
the worker (`palabre.outbox.worker`) claims due rows and calls `Transport.send`; status
callbacks move rows forward only (`palabre.outbox.statuses`).

The message log (`messages`, `palabre.stores.messagelog`) is kept beside it, not folded
in: a row may leave as several provider messages (SMS parts, an image then its text),
each with its own provider id that status callbacks name, and opt-outs live there. The
two are tied in one place: `MessageLog.status` moves the outbox row whose `provider_id`
it names forward in the same transaction, and the worker, recording a send, takes the
further of its own status and what the log already heard (a callback may come first).

Rows hold the address and the message (needed to send, and to answer a redelivered
inbound message with its replies again) until the retention blanks them
(palabre.outbox.retention); listings and logs show uids, channels, statuses, error
codes and contact keys, never a body or an address.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import cache

from sqlalchemy import Connection, bindparam, delete, func, or_, select, update

from palabre.db.batches import group_commit
from palabre.db.database import Database
from palabre.db.driver import DriverStatement
from palabre.db.inserts import insert_new
from palabre.db.schema import outbox
from palabre.outbox.rows import PRIORITY, ROW_COLUMNS, Queued, Row, outbound_of, payload_of
from palabre.outbox.statuses import (
    HELD,
    INLINE,
    NEEDS_ATTENTION,
    PENDING,
    QUEUED,
    SENT,
    forward,
)
from palabre.outbox.windows import Seen, last_inbound, note_inbound
from palabre.runtime.messages import Outbound

PURGED = "{}"  # the payload of a row whose body the retention no longer allows


class Outbox:
    """The durable outbox on the database; `wake()` nudges this process's worker."""

    def __init__(self, database: Database, clock: Callable[[], float] = time.time) -> None:
        self.database = database
        self.clock = clock
        self.wakeup = asyncio.Event()
        # The turns of a moment queue, release and mark their rows in one transaction.
        self.commits = group_commit(database)

    async def enqueue(
        self,
        items: list[Queued],
        *,
        replacing: str | None = None,
        seen: Seen | None = None,
    ) -> list[str]:
        """Add rows, in order, in one transaction; returns their uids. An idempotency key
        already queued keeps its row, and its uid is returned.

        `replacing` names a turn run again (its inbound key): the rows an earlier run of
        it queued and never sent (held, inline) are replaced by these, so a session that
        moved on meanwhile never gets replies written for the one before. `seen`: a
        WhatsApp contact who just wrote; their window with that number opens (windows).
        """
        dialect, now = self.database.dialect, self.clock()

        def work(conn: Connection) -> list[str]:
            if seen is not None:
                note_inbound(conn, dialect, seen, now)
            return _enqueue(conn, dialect, items, now, replacing)

        uids: list[str] = await self.commits.run(work)
        return uids

    async def last_inbound(self, contact_key: str, transport: str) -> float | None:
        """When the WhatsApp contact last wrote to the business number of `transport`
        (their 24-hour window with it), or None."""
        return await self.database.run(last_inbound, contact_key, transport)

    async def replies_to(self, inbound_key: str) -> list[Outbound]:
        """The messages once queued in answer to `inbound_key` (an inbound message, or a
        start), in order: what a redelivery is given again."""
        return await self.database.run(_replies_to, inbound_key)

    async def released(self, inbound_key: str) -> bool:
        """Whether a turn that answers `inbound_key` committed and released its rows."""
        return await self.database.run(_released, inbound_key)

    async def release(self, uids: list[str]) -> None:
        """The turn that queued these held rows committed: they may be sent now."""
        if not uids:
            return
        now = self.clock()
        released: int = await self.commits.run(lambda conn: _release(conn, uids, now))
        if released:
            self.wake()

    def delivered_inline(self, uids: list[str]) -> None:
        """The transport answered with these rows inline (TwiML): they are sent. Committed
        with the next batch of writes, unwaited, so the answer need not wait for it; an
        inline row is never sent by the worker, so a mark lost with the process leaves the
        row `inline` in the log, and sends nothing twice."""
        if uids:
            now = self.clock()
            self.commits.soon(
                lambda conn: _delivered_inline(conn, uids, now), "the mark of inline replies"
            )

    async def status(
        self, provider_id: str | None, uid: str | None, status: str, error_code: str | None
    ) -> None:
        """Apply a provider's status to its row (by uid, else provider id): forward only."""
        statement = forward(status, error_code, self.clock(), provider_id=provider_id, uid=uid)
        if statement is not None:
            await self.database.run(Connection.execute, statement)

    async def failed(self, limit: int = 50) -> list[Row]:
        """The rows that need a person's eye, newest first: failed, undelivered,
        unconfirmed (may or may not have arrived) and expired."""
        return await self.rows(limit, NEEDS_ATTENTION)

    async def rows(
        self,
        limit: int = 50,
        statuses: tuple[str, ...] | None = None,
        *,
        contact_key: str | None = None,
        broadcast_id: str | None = None,
    ) -> list[Row]:
        """The newest rows (of `statuses`, of the contact `contact_key`, of the broadcast
        `broadcast_id`, when given), for `palabre messages`."""
        query = select(*(outbox.c[name] for name in ROW_COLUMNS))
        if statuses is not None:
            query = query.where(outbox.c.status.in_(statuses))
        if contact_key is not None:
            query = query.where(outbox.c.contact_key == contact_key)
        if broadcast_id is not None:
            query = query.where(outbox.c.broadcast_id == broadcast_id)
        query = query.order_by(outbox.c.id.desc()).limit(limit)
        async with self.database.read() as conn:
            return [Row(*row) for row in (await conn.execute(query)).all()]

    async def get(self, uid: str) -> Row | None:
        """One row by its uid."""
        query = select(*(outbox.c[name] for name in ROW_COLUMNS)).where(outbox.c.uid == uid)
        async with self.database.read() as conn:
            found = (await conn.execute(query)).first()
        return Row(*found) if found else None

    async def purge(self, bodies_before: float, rows_before: float) -> dict[str, int]:
        """Blank the address and text of rows settled before `bodies_before`, delete those
        settled before `rows_before`, and held rows queued before `bodies_before` (see
        palabre.outbox.retention); returns how many rows each touched."""
        settled = outbox.c.status.not_in([*PENDING, HELD])
        async with self.database.write() as conn:
            held = await conn.execute(
                delete(outbox).where(outbox.c.status == HELD, outbox.c.created_at < bodies_before)
            )
            rows = await conn.execute(
                delete(outbox).where(settled, outbox.c.updated_at < rows_before)
            )
            bodies = await conn.execute(
                update(outbox)
                .where(settled, outbox.c.updated_at < bodies_before, outbox.c.address != "")
                .values(address="", payload=PURGED)
            )
        return {"held": held.rowcount, "rows": rows.rowcount, "bodies": bodies.rowcount}

    async def depth(self) -> dict[str, int]:
        """How many rows are in each status (for metrics)."""
        query = select(outbox.c.status, func.count()).group_by(outbox.c.status)
        async with self.database.read() as conn:
            return {status: int(n) for status, n in (await conn.execute(query)).all()}

    def wake(self) -> None:
        """Tell this process's worker that rows were queued: it claims them now rather
        than at its next poll (workers of other processes find them by polling)."""
        self.wakeup.set()


def _values(item: Queued, uid: str, now: float) -> dict[str, object]:
    message = item.message
    return {
        "uid": uid,
        "idempotency_key": item.idempotency_key,
        "contact_key": item.contact_key,
        "channel": item.transport,
        "address": message.contact,
        "kind": item.kind,
        "priority": PRIORITY[item.kind],
        "payload": payload_of(message),
        "status": INLINE if item.inline else HELD if item.held else QUEUED,
        "purpose": item.consent,
        "attempts": 0,
        "next_attempt_at": now,
        "expires_at": item.expires_at,
        "inbound_key": item.inbound_key,
        "broadcast_id": item.broadcast_id,
        "created_at": now,
        "updated_at": now,
    }


# -- the transactions, each run in one trip (Database.run) -------------------------------


# Built once: these run on every turn, and building a statement costs more than running it;
# the ones on every message's path run on the driver's cursor (palabre.db.driver).
_REPLACE = DriverStatement(
    delete(outbox).where(
        outbox.c.inbound_key == bindparam("b_key"),
        or_(outbox.c.status == HELD, outbox.c.status == INLINE),  # no IN list: see driver
    )
)
_RELEASE = DriverStatement(
    update(outbox)
    .where(outbox.c.uid == bindparam("b_uid"), outbox.c.status == HELD)
    .values(status=QUEUED, next_attempt_at=bindparam("b_now"), updated_at=bindparam("b_now"))
)
_DELIVERED_INLINE = DriverStatement(
    update(outbox)
    .where(outbox.c.uid == bindparam("b_uid"), outbox.c.status == INLINE)
    .values(status=SENT, updated_at=bindparam("b_now"))
)

_RELEASED = DriverStatement(  # every start with a key asks it first
    select(outbox.c.uid)
    .where(
        outbox.c.inbound_key == bindparam("b_key"),
        outbox.c.status != HELD,
        outbox.c.status != INLINE,  # no IN list: see driver
    )
    .limit(1)
)


@cache
def _insert_row(dialect: str) -> DriverStatement:
    return DriverStatement(insert_new(dialect, outbox))


def _enqueue(
    conn: Connection, dialect: str, items: list[Queued], now: float, replacing: str | None
) -> list[str]:
    if replacing is not None:
        _REPLACE.rowcount(conn, {"b_key": replacing})
    uids = []
    for item in items:
        uid = item.uid
        added = _insert_row(dialect).first(conn, _values(item, uid, now))
        if added is None:  # the key was queued before: keep that row
            taken = or_(outbox.c.idempotency_key == item.idempotency_key, outbox.c.uid == uid)
            uid = conn.execute(select(outbox.c.uid).where(taken).limit(1)).scalar_one()
        uids.append(uid)
    return uids


def _replies_to(conn: Connection, inbound_key: str) -> list[Outbound]:
    query = (
        select(outbox.c.uid, outbox.c.channel, outbox.c.address, outbox.c.payload)
        .where(outbox.c.inbound_key == inbound_key, outbox.c.address != "")
        .order_by(outbox.c.id)
    )
    return [outbound_of(*row) for row in conn.execute(query).all()]


def _released(conn: Connection, inbound_key: str) -> bool:
    return _RELEASED.first(conn, {"b_key": inbound_key}) is not None


def _release(conn: Connection, uids: list[str], now: float) -> int:
    return sum(_RELEASE.rowcount(conn, {"b_uid": uid, "b_now": now}) for uid in uids)


def _delivered_inline(conn: Connection, uids: list[str], now: float) -> None:
    for uid in uids:
        _DELIVERED_INLINE.rowcount(conn, {"b_uid": uid, "b_now": now})
