"""The broadcasts on the database: the snapshot of an audience, what is left to start,
and what became of the messages (the outbox rows that carry the broadcast's id).

A recipient's address and parameters are kept only until its flow is started: from then
on its messages are outbox rows, which hold what the transport needs, and the retention
and `palabre contacts erase` deal with them there.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from palabre.broadcasts.audience import Recipient
from palabre.db.database import Database
from palabre.db.schema import broadcast_recipients as recipients
from palabre.db.schema import broadcasts, outbox
from palabre.outbox.statuses import FAILED, HELD, NEEDS_ATTENTION, PENDING, QUEUED, SKIPPED

UNSENT = (HELD, *PENDING)  # a broadcast's messages still waiting or leaving


@dataclass(frozen=True)
class Broadcast:
    """One broadcast: a flow started for an audience."""

    id: str
    flow: str
    channel: str  # "whatsapp", "sms", or "" (each address's own)
    transport: str  # "twilio", "meta_cloud", or "" (by address)
    purpose: str
    params: dict[str, str]
    source: str
    recipients: int
    created_at: float
    queued_at: float | None = None
    fingerprint: str = ""  # the same flow, file and parameters give the same one


@dataclass
class Progress:
    """Where a broadcast stands: its lines by reason, its messages by status."""

    lines: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # at the snapshot, by reason
    waiting: int = 0  # lines whose flow is not started yet
    messages: dict[str, int] = field(default_factory=dict)  # outbox rows, by status

    @property
    def unsent(self) -> int:
        """Messages queued or leaving: the broadcast's place in the outbox."""
        return sum(self.messages.get(status, 0) for status in UNSENT)

    @property
    def finished(self) -> bool:
        """Every line started and every message settled."""
        return self.waiting == 0 and self.unsent == 0


@dataclass(frozen=True)
class Failure:
    """A line that was not delivered, and why (never its address)."""

    line: int | None
    status: str
    code: str | None
    reason: str | None


class BroadcastStore:
    """Broadcasts, their audiences and their progress, on the database."""

    def __init__(self, database: Database, clock: Callable[[], float] = time.time) -> None:
        self.database, self.clock = database, clock

    async def create(self, broadcast: Broadcast, audience: list[Recipient]) -> None:
        """Snapshot `broadcast` and every line of its audience, in one transaction."""
        head = {**vars(broadcast), "params": json.dumps(broadcast.params, ensure_ascii=False)}
        lines = [_line_row(broadcast.id, r) for r in audience]
        await self.database.run(_create, head, lines)

    async def get(self, broadcast_id: str) -> Broadcast | None:
        """The broadcast `broadcast_id`, or None."""
        query = select(broadcasts).where(broadcasts.c.id == broadcast_id)
        async with self.database.read() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _broadcast(row)

    async def latest(self, limit: int = 20) -> list[Broadcast]:
        """The newest broadcasts, newest first."""
        query = select(broadcasts).order_by(broadcasts.c.created_at.desc()).limit(limit)
        async with self.database.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_broadcast(row) for row in rows]

    async def same_as(self, fingerprint: str) -> Broadcast | None:
        """The latest broadcast with this fingerprint (the same one started before)."""
        query = (
            select(broadcasts.c.id)
            .where(broadcasts.c.fingerprint == fingerprint)
            .order_by(broadcasts.c.created_at.desc())
            .limit(1)
        )
        async with self.database.read() as conn:
            found = (await conn.execute(query)).scalar_one_or_none()
        return None if found is None else await self.get(found)

    async def waiting(self, broadcast_id: str, limit: int, after: int = 0) -> list[Recipient]:
        """The next `limit` lines after line `after` whose flow is not started yet, in
        file order (a feeder passes the last line it read: no walk over those started)."""
        query = (
            select(recipients)
            .where(_waiting(broadcast_id), recipients.c.line > after)
            .order_by(recipients.c.line)
            .limit(limit)
        )
        async with self.database.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_recipient(row) for row in rows]

    async def started(self, broadcast_id: str, lines: list[int]) -> None:
        """These lines' flows are started: forget their address and parameters."""
        now = self.clock()
        await self.database.run(_started, broadcast_id, lines, now)

    async def refused(self, broadcast_id: str, lines: list[int], reason: str) -> None:
        """These lines are skipped after all (consent withdrawn since the snapshot)."""
        if lines:
            now = self.clock()
            await self.database.run(_refused, broadcast_id, lines, reason, now)

    async def progress(self, broadcast_id: str) -> Progress:
        """Counts by reason and by status (one read of each table)."""
        async with self.database.read() as conn:
            return await conn.run_sync(_progress, broadcast_id)

    async def failures(self, broadcast_id: str, limit: int = 20) -> list[Failure]:
        """The lines skipped at the snapshot, in file order, then the messages not sent
        or not delivered, in the order they were queued: at most `limit` of each."""
        async with self.database.read() as conn:
            return await conn.run_sync(_failures, broadcast_id, limit)

    async def retry_failed(self, broadcast_id: str) -> int:
        """Queue again the broadcast's messages the worker gave up on after retryable
        errors only (the provider down, timeouts); returns how many. A message refused for
        good, one that may have arrived (`unconfirmed`), or one whose address the
        retention or an erasure blanked, is never sent again."""
        now = self.clock()
        retryable = update(outbox).where(
            outbox.c.broadcast_id == broadcast_id,
            outbox.c.status == FAILED,
            outbox.c.gave_up == 1,
            outbox.c.address != "",
        )
        statement = retryable.values(
            status=QUEUED,
            attempts=0,
            gave_up=None,
            error_code=None,
            last_error=None,
            next_attempt_at=now,
            send_started_at=None,
            updated_at=now,
        )
        async with self.database.write() as conn:
            return (await conn.execute(statement)).rowcount

    async def purge(self, bodies_before: float, rows_before: float) -> dict[str, int]:
        """The retention's part in broadcasts: lines of a broadcast created before
        `bodies_before` and still not started lose their address and parameters and end
        `expired` (resuming it three days on would surprise its parents); broadcasts
        created before `rows_before` are deleted with their lines."""
        return await self.database.run(_purge, bodies_before, rows_before)


def _purge(conn: Connection, bodies_before: float, rows_before: float) -> dict[str, int]:
    old = select(broadcasts.c.id).where(broadcasts.c.created_at < bodies_before)
    stale = (recipients.c.broadcast_id.in_(old)) & recipients.c.skip.is_(None)
    stale &= recipients.c.started_at.is_(None)
    expired = conn.execute(
        update(recipients)
        .where(stale)
        .values(skip="expired", detail="not started within the retention", address="", params="{}")
    ).rowcount
    gone = select(broadcasts.c.id).where(broadcasts.c.created_at < rows_before)
    lines = conn.execute(delete(recipients).where(recipients.c.broadcast_id.in_(gone))).rowcount
    heads = conn.execute(delete(broadcasts).where(broadcasts.c.created_at < rows_before)).rowcount
    return {"broadcast_lines_expired": expired, "broadcast_lines": lines, "broadcasts": heads}


def _broadcast(row: Any) -> Broadcast:
    return Broadcast(**{**row, "params": json.loads(row["params"])})


def _line_row(broadcast_id: str, recipient: Recipient) -> dict[str, Any]:
    keep = recipient.skip is None  # a skipped line keeps no address or parameter
    return {
        "broadcast_id": broadcast_id,
        "line": recipient.line,
        "contact_key": recipient.contact_key,
        "address": recipient.address if keep else "",
        "language": recipient.language,
        "params": json.dumps(recipient.params if keep else {}, ensure_ascii=False),
        "skip": recipient.skip,
        "detail": recipient.detail,
    }


def _recipient(row: Any) -> Recipient:
    return Recipient(
        row["line"],
        row["address"],
        row["contact_key"],
        row["language"],
        json.loads(row["params"]),
    )


def _waiting(broadcast_id: str) -> Any:
    return (
        (recipients.c.broadcast_id == broadcast_id)
        & recipients.c.skip.is_(None)
        & recipients.c.started_at.is_(None)
    )


def _create(conn: Connection, head: dict[str, Any], lines: list[dict[str, Any]]) -> None:
    conn.execute(insert(broadcasts), [head])
    if lines:
        conn.execute(insert(recipients), lines)


def _started(conn: Connection, broadcast_id: str, lines: list[int], now: float) -> None:
    _forget(conn, broadcast_id, lines, {"started_at": now}, now)


def _refused(
    conn: Connection, broadcast_id: str, lines: list[int], reason: str, now: float
) -> None:
    why = {"skip": reason, "detail": "withdrawn after the snapshot, before the start"}
    _forget(conn, broadcast_id, lines, why, now)


def _forget(
    conn: Connection, broadcast_id: str, lines: list[int], values: dict[str, Any], now: float
) -> None:
    """Set `values` on these lines, blank their address and parameters, and note when the
    broadcast's last line left the waiting ones."""
    mine = recipients.c.broadcast_id == broadcast_id
    for first in range(0, len(lines), 500):  # bounded IN lists
        chunk = lines[first : first + 500]
        conn.execute(
            update(recipients)
            .where(mine, recipients.c.line.in_(chunk))
            .values(address="", params="{}", **values)
        )
    if conn.execute(select(recipients.c.line).where(_waiting(broadcast_id)).limit(1)).first():
        return
    done = update(broadcasts).where(
        broadcasts.c.id == broadcast_id, broadcasts.c.queued_at.is_(None)
    )
    conn.execute(done.values(queued_at=now))


def _progress(conn: Connection, broadcast_id: str) -> Progress:
    by_line = (
        select(recipients.c.skip, recipients.c.started_at.is_(None), func.count())
        .where(recipients.c.broadcast_id == broadcast_id)
        .group_by(recipients.c.skip, recipients.c.started_at.is_(None))
    )
    progress = Progress()
    for skip, not_started, count in conn.execute(by_line).all():
        progress.lines += count
        if skip is not None:
            progress.skipped[skip] = progress.skipped.get(skip, 0) + count
        elif not_started:
            progress.waiting += count
    by_status = (
        select(outbox.c.status, func.count())
        .where(outbox.c.broadcast_id == broadcast_id)
        .group_by(outbox.c.status)
    )
    progress.messages = {status: int(n) for status, n in conn.execute(by_status).all()}
    return progress


def _failures(conn: Connection, broadcast_id: str, limit: int) -> list[Failure]:
    skipped = (
        select(recipients.c.line, recipients.c.skip, recipients.c.detail)
        .where(recipients.c.broadcast_id == broadcast_id, recipients.c.skip.is_not(None))
        .order_by(recipients.c.line)
        .limit(limit)
    )
    found = [Failure(line, SKIPPED, skip, detail) for line, skip, detail in conn.execute(skipped)]
    line_of = (
        select(recipients.c.line)
        .where(
            recipients.c.broadcast_id == broadcast_id,
            recipients.c.skip.is_(None),  # a duplicate line shares its first's key
            recipients.c.contact_key == outbox.c.contact_key,
        )
        .scalar_subquery()
    )
    undelivered = (
        select(line_of, outbox.c.status, outbox.c.error_code, outbox.c.last_error)
        .where(
            outbox.c.broadcast_id == broadcast_id,
            outbox.c.status.in_([*NEEDS_ATTENTION, SKIPPED]),
        )
        .order_by(outbox.c.id)
        .limit(limit)
    )
    found += [Failure(*row) for row in conn.execute(undelivered)]
    return found
