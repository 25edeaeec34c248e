"""The worker's side of the outbox: claim due rows, mark a send started, record outcomes.

A claim is one short write transaction. On PostgreSQL it selects with `FOR UPDATE SKIP
LOCKED`, so workers never wait for each other nor take the same row; on SQLite the write
transaction (`BEGIN IMMEDIATE`) makes the claimer the single writer. A row is eligible
when it is queued and due, no earlier row of its contact is unfinished (queued or
sending) and none of its contact's rows is being sent: one in flight per contact, across
every worker, in `id` order; lower `priority` first (replies before bulk), then `id`.
Claiming sets `status='sending'`, `claimed_by` and `claimed_until` (the lease).

Starting and recording a send are group commits (palabre.db.batches): the sends of a moment
share one transaction. `send_started_at` is committed once the send's turn came (see
limits), just before the transport is called. A claim whose lease lapsed (its worker
died) is re-examined by any worker (`reap`): without the marker the transport was never
called, and the row is queued again; with it, the request may have gone out, and the row
becomes `unconfirmed`, never resent blindly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Update,
    and_,
    bindparam,
    case,
    exists,
    or_,
    select,
    update,
)

from palabre.db.batches import group_commit
from palabre.db.planner import WALK_THE_INDEX
from palabre.db.schema import messages, outbox
from palabre.db.schema import whatsapp_windows as windows
from palabre.outbox.policy import Outcome
from palabre.outbox.rows import outbound_of
from palabre.outbox.statuses import (
    EXPIRED,
    FINAL,
    FROM_PROVIDER,
    HELD,
    HOLD_BLOCKS,
    PENDING,
    QUEUED,
    RANK,
    SENDING,
    SENT,
    UNCONFIRMED,
)
from palabre.outbox.store import Outbox
from palabre.runtime.messages import Outbound

LAPSED = "the worker stopped while sending: the message may or may not have gone out"


@dataclass(frozen=True)
class Claimed:
    """A row this worker holds, with what it needs to send it."""

    uid: str
    channel: str
    address: str
    contact_key: str
    payload: str
    attempts: int
    purpose: str = "service"  # the consent it needs (palabre.stores.consent)
    last_inbound_at: float | None = None  # when the contact last wrote to its transport

    def outbound(self) -> Outbound:
        return outbound_of(self.uid, self.channel, self.address, self.payload)


class Claims:
    """One worker's claims on the outbox, named `worker_id`, each held `lease` seconds."""

    def __init__(self, box: Outbox, worker_id: str, lease: float) -> None:
        self.box, self.worker_id, self.lease = box, worker_id, lease
        self.db = box.database
        self.commits = group_commit(box.database)

    async def claim(self, limit: int, channels: Iterable[str]) -> list[Claimed]:
        """Expire what is past its time, then claim up to `limit` eligible rows."""
        now, wanted = self.box.clock(), list(channels)

        def work(conn: Connection) -> list[Claimed]:
            conn.execute(_expire(now))
            if self.db.dialect == "postgresql":
                conn.exec_driver_sql(WALK_THE_INDEX)
            found = conn.execute(self._eligible(now, limit, wanted))
            ids = [int(n) for n in found.scalars().all()]
            if not ids:
                return []
            claim = (
                update(outbox)
                .where(outbox.c.id.in_(ids), outbox.c.status == QUEUED)
                .values(
                    status=SENDING,
                    claimed_by=self.worker_id,
                    claimed_until=now + self.lease,
                    send_started_at=None,
                    updated_at=now,
                )
            )
            conn.execute(claim)
            rows = conn.execute(_claimed(self.worker_id, ids))
            return [Claimed(**row._mapping) for row in rows.all()]

        claimed: list[Claimed] = await self.commits.run(work)
        return claimed

    def _eligible(self, now: float, limit: int, channels: list[str]) -> Select[Any]:
        other = outbox.alias("other")
        committing = and_(other.c.status == HELD, other.c.created_at > now - HOLD_BLOCKS)
        unfinished_before = exists().where(
            other.c.contact_key == outbox.c.contact_key,
            or_(other.c.status.in_(PENDING), committing),
            other.c.id < outbox.c.id,
        )
        in_flight = exists().where(
            other.c.contact_key == outbox.c.contact_key, other.c.status == SENDING
        )
        query = (
            select(outbox.c.id)
            .where(
                outbox.c.status == QUEUED,
                outbox.c.next_attempt_at <= now,
                outbox.c.channel.in_(channels),
                ~unfinished_before,
                ~in_flight,
            )
            .order_by(outbox.c.priority, outbox.c.id)
            .limit(limit)
        )
        if self.db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True, of=outbox)
        return query

    async def start(self, row: Claimed) -> bool:
        """Commit that the transport is about to be called; False when the claim was lost."""
        values = {"b_uid": row.uid, "b_worker": self.worker_id, "b_now": self.box.clock()}

        def work(conn: Connection) -> bool:
            return conn.execute(_START, values).first() is not None

        return bool(await self.commits.run(work))

    async def release(self, rows: list[Claimed], until: float | None = None) -> None:
        """Give rows back unsent (throttled, or the worker stops): queued, due at `until`."""
        if not rows:
            return
        now = self.box.clock()
        statement = (
            update(outbox)
            .where(
                outbox.c.uid.in_([row.uid for row in rows]),
                outbox.c.status == SENDING,
                outbox.c.claimed_by == self.worker_id,
            )
            .values(
                status=QUEUED,
                next_attempt_at=until or now,
                send_started_at=None,
                updated_at=now,
                **_UNCLAIMED,
            )
        )
        await self.commits.execute(statement)

    async def record(self, row: Claimed, outcome: Outcome) -> None:
        """Write what became of a send. A sent row takes the further of `sent` and what a
        status callback already said; a lapsed claim already marked unconfirmed may still
        be confirmed forward by a provider id."""
        now = self.box.clock()

        def work(conn: Connection) -> None:
            if outcome.status == SENT:
                _record_sent_of(conn, row, outcome, now)
                return
            values = {
                "status": outcome.status,
                "attempts": outcome.attempts,
                "error_code": outcome.error_code,
                "last_error": outcome.reason,
                "gave_up": int(outcome.gave_up),
                "updated_at": now,
                **_UNCLAIMED,
            }
            if outcome.next_attempt_at is not None:
                values["next_attempt_at"] = outcome.next_attempt_at
            conn.execute(update(outbox).where(*self._mine(row)).values(**values))

        await self.commits.run(work)

    async def reap(self) -> int:
        """Re-examine claims whose lease lapsed: queued again if the send never started,
        else unconfirmed. Returns how many rows changed."""
        now = self.box.clock()
        lapsed = and_(outbox.c.status == SENDING, outbox.c.claimed_until < now)
        started = outbox.c.send_started_at.is_not(None)
        statement = (
            update(outbox)
            .where(lapsed)
            .values(
                status=case((started, UNCONFIRMED), else_=QUEUED),
                last_error=case((started, LAPSED), else_=outbox.c.last_error),
                updated_at=now,
                **_UNCLAIMED,
            )
            .returning(outbox.c.id)
        )

        def work(conn: Connection) -> int:
            return len(conn.execute(statement).all())

        reaped: int = await self.commits.run(work)
        return reaped

    def _mine(self, row: Claimed) -> tuple[ColumnElement[bool], ...]:
        return (
            outbox.c.uid == row.uid,
            outbox.c.status == SENDING,
            outbox.c.claimed_by == self.worker_id,
        )


_UNCLAIMED = {"claimed_by": None, "claimed_until": None}


def _record_sent_of(conn: Connection, row: Claimed, outcome: Outcome, now: float) -> None:
    values = {
        "b_uid": row.uid,
        "b_provider_id": outcome.provider_id,
        "b_attempts": outcome.attempts,
        "b_now": now,
    }
    conn.execute(_RECORD_SENT, values)


def _start() -> Update:
    # Built once: the two statements of every send are the worker's hottest path.
    return (
        update(outbox)
        .where(
            outbox.c.uid == bindparam("b_uid"),
            outbox.c.status == SENDING,
            outbox.c.claimed_by == bindparam("b_worker"),
            outbox.c.claimed_until > bindparam("b_now"),
        )
        .values(send_started_at=bindparam("b_now"), updated_at=bindparam("b_now"))
        .returning(outbox.c.id)
    )


def _record_sent() -> Update:
    # `sent`, unless a callback by uid already moved the row further; then whatever
    # the message log heard of this provider id before we got here, if further.
    claimed = outbox.c.status.in_([SENDING, UNCONFIRMED])
    base = case((claimed, SENT), else_=outbox.c.status)
    heard = (
        select(messages.c.status)
        .where(messages.c.provider_id == bindparam("b_provider_id"))
        .scalar_subquery()
    )
    heard_further = and_(
        outbox.c.status.not_in(FINAL),
        heard.in_(FROM_PROVIDER),
        case(RANK, value=heard, else_=0) > case(RANK, value=base, else_=0),
    )
    return (
        update(outbox)
        .where(outbox.c.uid == bindparam("b_uid"))
        .values(
            status=case((heard_further, heard), else_=base),
            provider_id=bindparam("b_provider_id"),
            attempts=bindparam("b_attempts"),
            updated_at=bindparam("b_now"),
            **_UNCLAIMED,
        )
    )


_START, _RECORD_SENT = _start(), _record_sent()


def _expire(now: float) -> Update:
    return (
        update(outbox)
        .where(
            outbox.c.status == QUEUED,
            outbox.c.expires_at.is_not(None),
            outbox.c.expires_at <= now,
        )
        .values(status=EXPIRED, last_error="expired before it could be sent", updated_at=now)
    )


def _claimed(worker_id: str, ids: list[int]) -> Select[Any]:
    columns = ("uid", "channel", "address", "contact_key", "payload", "attempts", "purpose")
    # With each row, its contact's 24-hour window with that transport: no read per send.
    window = and_(
        windows.c.contact_key == outbox.c.contact_key, windows.c.transport == outbox.c.channel
    )
    return (
        select(*(outbox.c[name] for name in columns), windows.c.last_inbound_at)
        .select_from(outbox.outerjoin(windows, window))
        .where(outbox.c.id.in_(ids), outbox.c.claimed_by == worker_id, outbox.c.status == SENDING)
        .order_by(outbox.c.priority, outbox.c.id)
    )
