"""A durable queue of background work for plugins (DHIS-2 registrations waiting...).

A task is a kind, an id chosen by its plugin (adding the same id again changes nothing),
a JSON payload, and when to try next. `done` deletes the row, payload and all: on the
embedded SQLite file the bytes are overwritten (`secure_delete`). Several workers may
see the same due task: a plugin's work must be safe to repeat (DHIS-2's client UIDs are).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update

from palabre.db.database import Database
from palabre.db.inserts import insert_new
from palabre.db.schema import tasks


@dataclass(frozen=True)
class Task:
    """One queued piece of work and how many attempts have failed so far."""

    id: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    last_error: str | None = None


class TaskQueue:
    """Tasks by kind, due oldest first; every write is committed before it returns."""

    def __init__(self, database: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = database
        self._clock = clock

    async def add(self, kind: str, task_id: str, payload: dict[str, Any]) -> bool:
        """Queue a task, due now; False when `task_id` is already queued."""
        now = self._clock()
        row = {"id": task_id, "kind": kind, "payload": json.dumps(payload)}
        async with self._db.write() as conn:
            statement = insert_new(self._db.dialect, tasks)
            values = {**row, "next_attempt_at": now, "created_at": now}
            return (await conn.execute(statement, values)).first() is not None

    async def due(self, kind: str, limit: int = 20) -> list[Task]:
        """The tasks of `kind` whose next attempt is due, oldest first."""
        query = (
            select(tasks.c.id, tasks.c.kind, tasks.c.payload, tasks.c.attempts, tasks.c.last_error)
            .where(tasks.c.kind == kind, tasks.c.next_attempt_at <= self._clock())
            .order_by(tasks.c.next_attempt_at, tasks.c.id)
            .limit(limit)
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [Task(id_, kind_, json.loads(data), n, error) for id_, kind_, data, n, error in rows]

    async def postpone(self, task_id: str, delay: float, error: str) -> None:
        """Try again in `delay` seconds; `error` names the failure (no personal data)."""
        statement = (
            update(tasks)
            .where(tasks.c.id == task_id)
            .values(
                attempts=tasks.c.attempts + 1,
                next_attempt_at=self._clock() + delay,
                last_error=error,
            )
        )
        async with self._db.write() as conn:
            await conn.execute(statement)

    async def done(self, task_id: str) -> None:
        """Forget a finished task, payload and all: on SQLite the write-ahead log is folded
        in at once, so the payload (a code, for DHIS-2) is left in neither file."""
        async with self._db.write() as conn:
            await conn.execute(delete(tasks).where(tasks.c.id == task_id))
        await self._db.checkpoint()

    async def count(self, kind: str | None = None) -> int:
        """How many tasks are queued (of `kind`, when given), due or not."""
        query = select(func.count()).select_from(tasks)
        if kind is not None:
            query = query.where(tasks.c.kind == kind)
        async with self._db.read() as conn:
            return int((await conn.execute(query)).scalar_one())
