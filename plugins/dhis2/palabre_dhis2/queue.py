"""Registrations waiting for DHIS-2, kept durably in SQLite until they are imported.

One row per registration, keyed by its tracked entity UID: the code (the value the flow
chose to register), the UIDs the import needs, and when to try next. No contact, no
phone number. `queue_for(data_dir)` is the one door: the action and the worker share the
queue of `<data_dir>/dhis2-queue.db` through it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from palabre.stores.sqlite import SQLiteConnection
from palabre_dhis2.program import ProgramSettings
from palabre_dhis2.registration import Registration

log = logging.getLogger("palabre.dhis2")

FILE_NAME = "dhis2-queue.db"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS registrations (
    tracked_entity TEXT PRIMARY KEY, enrollment TEXT NOT NULL, value TEXT NOT NULL,
    program TEXT NOT NULL, attribute TEXT NOT NULL, org_unit TEXT NOT NULL,
    tracked_entity_type TEXT NOT NULL, org_unit_mode TEXT NOT NULL, enrolled_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL, last_error TEXT);
"""
_COLUMNS = (
    "tracked_entity, enrollment, value, program, attribute, org_unit, "
    "tracked_entity_type, org_unit_mode, enrolled_at"
)


@dataclass(frozen=True)
class Queued:
    """A queued registration and how many attempts have failed so far."""

    registration: Registration
    attempts: int


class RegistrationQueue:
    """A durable queue of registrations; every write is committed before it returns."""

    def __init__(self, path: str | os.PathLike[str], clock: Callable[[], float] = time.time):
        self._db = SQLiteConnection(path, _SCHEMA)
        self._clock = clock

    async def add(self, registration: Registration) -> None:
        """Queue `registration`, due now (adding the same UIDs again changes nothing)."""
        await self._db.run(_insert, registration, self._clock())
        log.info("registration queued", extra={"id": registration.tracked_entity})

    async def due(self, limit: int = 20) -> list[Queued]:
        """The registrations whose next attempt is due, oldest first."""
        return await self._db.run(_select_due, self._clock(), limit)

    async def done(self, tracked_entity: str) -> None:
        """Forget a registration DHIS-2 now holds: the row is overwritten, not just unlinked."""
        await self._db.run(_delete, tracked_entity)

    async def postpone(self, tracked_entity: str, delay: float, error: str) -> None:
        """Try again in `delay` seconds; `error` names the failure (no personal data)."""
        await self._db.run(_postpone, tracked_entity, self._clock() + delay, error)

    async def checkpoint(self) -> None:
        """Fold the write-ahead log into the file, so deleted rows are gone from both."""
        await self._db.run(lambda c: c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())

    async def count(self) -> int:
        return await self._db.run(lambda c: int(c.execute(_COUNT).fetchone()[0]))

    async def aclose(self) -> None:
        await self._db.aclose()


_QUEUES: dict[Path, RegistrationQueue] = {}
_COUNT = "SELECT COUNT(*) FROM registrations"


def queue_for(data_dir: str | os.PathLike[str]) -> RegistrationQueue:
    """The queue kept in `data_dir`, opened once per process and shared."""
    path = (Path(data_dir) / FILE_NAME).resolve()
    if path not in _QUEUES:
        _QUEUES[path] = RegistrationQueue(path)
    return _QUEUES[path]


def _insert(conn: sqlite3.Connection, r: Registration, now: float) -> None:
    p = r.program
    conn.execute(
        f"INSERT OR IGNORE INTO registrations ({_COLUMNS}, next_attempt_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            *(r.tracked_entity, r.enrollment, r.value),
            *(p.program, p.attribute, p.org_unit, p.tracked_entity_type, p.org_unit_mode),
            *(r.enrolled_at, now),
        ),
    )


def _select_due(conn: sqlite3.Connection, now: float, limit: int) -> list[Queued]:
    rows = conn.execute(
        f"SELECT {_COLUMNS}, attempts FROM registrations WHERE next_attempt_at <= ? "
        "ORDER BY next_attempt_at LIMIT ?",
        (now, limit),
    ).fetchall()
    return [_queued(row) for row in rows]


def _queued(row: tuple[Any, ...]) -> Queued:
    te, enrollment, value, program, attribute, org_unit, te_type, mode, enrolled_at, n = row
    settings = ProgramSettings(program, attribute, org_unit, te_type, mode)
    return Queued(Registration(value, settings, te, enrollment, enrolled_at), int(n))


def _delete(conn: sqlite3.Connection, tracked_entity: str) -> None:
    conn.execute("DELETE FROM registrations WHERE tracked_entity = ?", (tracked_entity,))


def _postpone(conn: sqlite3.Connection, tracked_entity: str, at: float, error: str) -> None:
    conn.execute(
        "UPDATE registrations SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? "
        "WHERE tracked_entity = ?",
        (at, error, tracked_entity),
    )
