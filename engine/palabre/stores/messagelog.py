"""The message log: every outbound message's provider id and delivery status, and opt-outs.

It never stores a message body or a phone number: contacts are keyed hashes. Status
callbacks may arrive out of order (a `sent` after its `delivered`), so a status only
moves forward; `failed` and `undelivered` are final.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass

from palabre.stores.sqlite import SQLiteConnection

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    provider_id TEXT PRIMARY KEY, channel TEXT NOT NULL, contact_key TEXT NOT NULL,
    status TEXT NOT NULL, error_code TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS opt_outs (
    contact_key TEXT PRIMARY KEY, reason TEXT NOT NULL, at REAL NOT NULL);
"""

RANK = {
    "accepted": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "read": 5,
    "undelivered": 6,
    "failed": 6,
}
FINAL = {"undelivered", "failed"}


@dataclass(frozen=True)
class LoggedMessage:
    """One outbound message as the log knows it."""

    provider_id: str
    channel: str
    contact_key: str
    status: str
    error_code: str | None


class MessageLog:
    """Provider ids and statuses of sent messages, and the contacts who opted out."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._db = SQLiteConnection(path, _SCHEMA)

    async def sent(
        self, provider_id: str, channel: str, contact_key: str, status: str = "sent"
    ) -> None:
        """Record a message the provider accepted."""
        await self._db.run(_insert, provider_id, channel, contact_key, status, time.time())

    async def status(
        self,
        provider_id: str,
        status: str,
        error_code: str | None = None,
        *,
        channel: str = "",
        contact_key: str = "",
    ) -> LoggedMessage:
        """Apply a status callback; a message the log never saw is added."""
        return await self._db.run(
            _update, provider_id, status, error_code, channel, contact_key, time.time()
        )

    async def get(self, provider_id: str) -> LoggedMessage | None:
        return await self._db.run(_select, provider_id)

    async def opt_out(self, contact_key: str, reason: str) -> None:
        """Remember that this contact asked to receive nothing more."""
        sql = "INSERT OR REPLACE INTO opt_outs (contact_key, reason, at) VALUES (?, ?, ?)"
        await self._db.run(lambda conn: conn.execute(sql, (contact_key, reason, time.time())))

    async def opted_out(self, contact_key: str) -> bool:
        sql = "SELECT 1 FROM opt_outs WHERE contact_key = ?"
        row = await self._db.run(lambda conn: conn.execute(sql, (contact_key,)).fetchone())
        return row is not None

    async def aclose(self) -> None:
        await self._db.aclose()


def _insert(
    conn: sqlite3.Connection, pid: str, channel: str, key: str, status: str, now: float
) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?, NULL, ?, ?)",
        (pid, channel, key, status, now, now),
    )


def _update(
    conn: sqlite3.Connection,
    pid: str,
    status: str,
    error: str | None,
    channel: str,
    key: str,
    now: float,
) -> LoggedMessage:
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = _select(conn, pid)
        if current is None:
            conn.execute(
                "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)",
                (pid, channel, key, status, error, now, now),
            )
        elif _moves_forward(current.status, status):
            conn.execute(
                "UPDATE messages SET status = ?, error_code = COALESCE(?, error_code), "
                "updated_at = ? WHERE provider_id = ?",
                (status, error, now, pid),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    result = _select(conn, pid)
    assert result is not None
    return result


def _moves_forward(current: str, new: str) -> bool:
    if current in FINAL:
        return False
    return RANK.get(new, 0) > RANK.get(current, 0)


def _select(conn: sqlite3.Connection, pid: str) -> LoggedMessage | None:
    row = conn.execute(
        "SELECT provider_id, channel, contact_key, status, error_code FROM messages "
        "WHERE provider_id = ?",
        (pid,),
    ).fetchone()
    return LoggedMessage(*row) if row else None
