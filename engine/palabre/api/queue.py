"""The events the API took, on the database: what the starters claim, and what a caller
asks about later (`GET /api/v1/events/{id}`).

    queued ─▶ starting ─▶ started      its flows ran; `messages` are their outbox rows
       ▲          │  ├──▶ failed       a flow could not run on this event's data, or
       └──────────┘  │                 no flow takes it any more
     lapsed claim    └──▶ expired      its ttl ran out before a starter reached it

One row per (API key, event id): taking an event is one INSERT, and the same (key, id)
again finds the row rather than adding one. A claim is one short write transaction: it
first queues again the events whose claim lapsed (their starter died), then claims queued
events in the order they came, each only when no earlier event of its contact is
unfinished, so that each contact's events start in order across every process. On
PostgreSQL it skips rows another starter holds (`FOR UPDATE SKIP LOCKED`). Both steps
walk the status index and stop early, however many events wait. The person's address
and the event's data (`request`) are kept only until the flows have run. A caller that
waits for an event to settle (`Prefer: wait`) is woken by this process's starter when it
finishes the event, and otherwise reads its status again every SETTLE_POLL seconds.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, exists, func, select, update

from palabre.db.batches import group_commit
from palabre.db.database import Database
from palabre.db.driver import DriverStatement
from palabre.db.inserts import insert_new
from palabre.db.planner import WALK_THE_INDEX
from palabre.db.schema import api_events, outbox
from palabre.waits import woken

QUEUED, STARTING, STARTED, FAILED, EXPIRED = "queued", "starting", "started", "failed", "expired"
UNFINISHED = (QUEUED, STARTING)
BLANK = "{}"  # the request of an event whose flows have run: nothing personal is kept
SETTLE_POLL = 0.5  # how often a waiting caller reads the status of an event in other hands


@dataclass(frozen=True)
class Taken:
    """An event to take: what the API checked, with its contact's keyed hash."""

    key_name: str
    event_id: str
    digest: str
    event: str
    contact_key: str
    request: str  # EventRequest.canonical: [event, to, lang, data, ttl]
    expires_at: float | None


@dataclass(frozen=True)
class Claimed:
    """An event a starter holds."""

    id: int
    key_name: str
    event_id: str
    event: str
    request: dict[str, Any]
    expires_at: float | None
    attempts: int


@dataclass(frozen=True)
class EventStatus:
    """What became of an event, as `GET /api/v1/events/{id}` tells it."""

    event_id: str
    event: str
    status: str
    messages: list[dict[str, str]]  # each {"id": uid, "status": the outbox row's}
    error: str | None

    def document(self) -> dict[str, Any]:
        found: dict[str, Any] = {"id": self.event_id, "event": self.event, "status": self.status}
        found["messages"] = self.messages
        return found | ({"error": self.error} if self.error else {})


class EventQueue:
    """The events taken, on the database; `wake()` nudges this process's starter."""

    def __init__(self, database: Database, clock: Callable[[], float] = time.time) -> None:
        self.database, self.clock = database, clock
        self.wakeup = asyncio.Event()
        self.commits = group_commit(database)  # the outbox's: one trip for a moment's writes
        self._settling: dict[tuple[str, str], set[asyncio.Event]] = {}  # (key, id): waiters

    def wake(self) -> None:
        self.wakeup.set()

    async def take(self, event: Taken) -> str | None:
        """Add the event, queued; None when it was added, else the digest of the event
        already taken under its (key, id)."""
        now = self.clock()
        row = {
            "key_name": event.key_name,
            "event_id": event.event_id,
            "digest": event.digest,
            "event": event.event,
            "contact_key": event.contact_key,
            "request": event.request,
            "status": QUEUED,
            "expires_at": event.expires_at,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        statement = _take(self.database.dialect)
        added = await self.commits.run(lambda conn: statement.first(conn, row))
        if added is not None:
            self.wake()
            return None
        ids = {"b_key": event.key_name, "b_id": event.event_id}
        found = await self.database.run(_DIGEST.first, ids)
        if found is None:  # the retention forgot it between the two: it is new again
            return await self.take(event)
        return str(found[0])

    async def claim(
        self, worker: str, limit: int, lease: float, only: tuple[str, str] | None = None
    ) -> list[Claimed]:
        """Queue again the events whose claim lapsed, then claim up to `limit` eligible
        events (`only` the one of this key name and event id, when given)."""
        now, postgres = self.clock(), self.database.dialect == "postgresql"
        query = _eligible(limit, postgres)
        if only is not None:
            query = query.where(api_events.c.key_name == only[0], api_events.c.event_id == only[1])

        def work(conn: Connection) -> list[Claimed]:
            conn.execute(_lapsed(now))
            if postgres:
                conn.exec_driver_sql(WALK_THE_INDEX)
            ids = [int(n) for n in conn.execute(query).scalars()]
            if not ids:
                return []
            held = {"claimed_by": worker, "claimed_until": now + lease, "updated_at": now}
            taken = update(api_events).where(api_events.c.id.in_(ids))
            conn.execute(taken.values(status=STARTING, attempts=api_events.c.attempts + 1, **held))
            return [_claimed(row) for row in conn.execute(_holding(ids)).mappings()]

        claimed: list[Claimed] = await self.commits.run(work)
        return claimed

    async def finish(
        self, event: Claimed, worker: str, status: str, messages: list[str], error: str | None
    ) -> None:
        """Record what became of a claimed event, unless its claim was lost meanwhile."""
        values = {
            "b_id": event.id,
            "b_worker": worker,
            "b_status": status,
            "b_messages": json.dumps(messages),
            "b_error": error,
            "b_now": self.clock(),
        }
        await self.commits.run(lambda conn: _FINISH.rowcount(conn, values))
        for waiter in self._settling.get((event.key_name, event.event_id), ()):
            waiter.set()

    async def again_in(self, event: Claimed, worker: str, seconds: float) -> None:
        """Keep a claimed event from every starter for `seconds` (the store failed): its
        claim then lapses, and it is claimed again."""
        mine = and_(api_events.c.id == event.id, api_events.c.claimed_by == worker)
        later = {"claimed_until": self.clock() + seconds, "updated_at": self.clock()}
        await self.commits.execute(update(api_events).where(mine).values(**later))

    async def status(self, key_name: str, event_id: str) -> EventStatus | None:
        """What became of the event `event_id` of the key `key_name`; None if unknown."""
        return await self.database.run(_status_of, key_name, event_id)

    async def settled(self, key_name: str, event_id: str, timeout: float) -> EventStatus | None:
        """The event's status once it is no longer queued or starting, or after `timeout`
        seconds, whichever comes first; None if unknown."""
        deadline = asyncio.get_running_loop().time() + timeout
        waiter, ids = asyncio.Event(), (key_name, event_id)
        self._settling.setdefault(ids, set()).add(waiter)  # before the read: no wake is lost
        try:
            while True:
                found = await self.status(key_name, event_id)
                left = deadline - asyncio.get_running_loop().time()
                if found is None or found.status not in UNFINISHED or left <= 0:
                    return found
                await woken(waiter, min(left, SETTLE_POLL))
                waiter.clear()
        finally:
            waiters = self._settling[ids]
            waiters.discard(waiter)
            if not waiters:
                del self._settling[ids]

    async def waiting(self) -> dict[str, int]:
        """How many events are queued and starting (for metrics; the status index counts)."""
        query = select(api_events.c.status, func.count()).where(api_events.c.status.in_(UNFINISHED))
        async with self.database.read() as conn:
            found = (await conn.execute(query.group_by(api_events.c.status))).all()
        return {status: 0 for status in UNFINISHED} | {status: int(n) for status, n in found}

    async def forget(self, before: float) -> int:
        """Delete the finished events received before `before` (an id sent again after
        that is a new event); returns how many."""
        old = delete(api_events).where(
            api_events.c.created_at < before, api_events.c.status.not_in(UNFINISHED)
        )
        async with self.database.write() as conn:
            return (await conn.execute(old)).rowcount


@cache
def _take(dialect: str) -> DriverStatement:
    return DriverStatement(insert_new(dialect, api_events))


def _lapsed(now: float) -> Any:
    """Events whose starter died while it held them: queued again, in their place."""
    lapsed = and_(api_events.c.status == STARTING, api_events.c.claimed_until <= now)
    values = {"status": QUEUED, "claimed_by": None, "claimed_until": None, "updated_at": now}
    return update(api_events).where(lapsed).values(**values)


def _eligible(limit: int, postgres: bool) -> Any:
    other = api_events.alias("other")
    unfinished_before = exists().where(
        other.c.contact_key == api_events.c.contact_key,
        other.c.status.in_(UNFINISHED),
        other.c.id < api_events.c.id,
    )
    query = (
        select(api_events.c.id)
        .where(api_events.c.status == QUEUED, ~unfinished_before)
        .order_by(api_events.c.id)
        .limit(limit)
    )
    return query.with_for_update(skip_locked=True, of=api_events) if postgres else query


def _holding(ids: list[int]) -> Any:
    columns = [api_events.c[name] for name in ("id", "key_name", "event_id", "event")]
    extra = [api_events.c.request, api_events.c.expires_at, api_events.c.attempts]
    return select(*columns, *extra).where(api_events.c.id.in_(ids)).order_by(api_events.c.id)


def _claimed(row: Any) -> Claimed:
    return Claimed(**{**row, "request": request_of(row["request"])})


def request_of(kept: str) -> dict[str, Any]:
    """The `request` column read: to, lang and data; {} once blanked."""
    found = json.loads(kept)
    if not isinstance(found, list):
        return {}
    _, to, lang, data, _ = found
    return {"to": to, "lang": lang, "data": data}


def _status_of(conn: Connection, key_name: str, event_id: str) -> EventStatus | None:
    mine = and_(api_events.c.key_name == key_name, api_events.c.event_id == event_id)
    columns = (api_events.c.event, api_events.c.status, api_events.c.messages, api_events.c.error)
    row = conn.execute(select(*columns).where(mine)).first()
    if row is None:
        return None
    uids: list[str] = json.loads(row.messages or "[]")
    found = select(outbox.c.uid, outbox.c.status).where(outbox.c.uid.in_(uids))
    statuses = {uid: status for uid, status in conn.execute(found)} if uids else {}
    messages = [{"id": uid, "status": statuses.get(uid, "forgotten")} for uid in uids]
    return EventStatus(event_id, row.event, row.status, messages, row.error)


# A replay's lookup: the digest of the event first taken under (key, id).
_DIGEST = DriverStatement(
    select(api_events.c.digest).where(
        api_events.c.key_name == bindparam("b_key"), api_events.c.event_id == bindparam("b_id")
    )
)
_FINISH = DriverStatement(
    update(api_events)
    .where(api_events.c.id == bindparam("b_id"), api_events.c.claimed_by == bindparam("b_worker"))
    .values(
        status=bindparam("b_status"),
        messages=bindparam("b_messages"),
        error=bindparam("b_error"),
        request=BLANK,
        claimed_by=None,
        claimed_until=None,
        updated_at=bindparam("b_now"),
    )
)
