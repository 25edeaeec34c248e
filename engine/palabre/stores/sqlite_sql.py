"""The embedded session store's SQL: its schema, and the transactions it runs, each a
plain function of the sqlite3 connection run in one trip to the store's thread
(palabre.stores.sqlite_connection). The lock rows use the wall clock, not the injected
one: every process sharing the file must agree on it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    contact TEXT PRIMARY KEY, data TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS seen (
    message_id TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS locks (
    contact TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL);
"""

# Take the lock when it is free, or when its holder let it go stale.
ACQUIRE = """
INSERT INTO locks (contact, owner, expires_at) VALUES (?, ?, ?)
ON CONFLICT (contact) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE locks.expires_at <= ?
"""


def select_session(conn: sqlite3.Connection, contact: str, now: float) -> str | None:
    sql = "SELECT data FROM sessions WHERE contact = ? AND expires_at > ?"
    row = conn.execute(sql, (contact, now)).fetchone()
    return None if row is None else str(row[0])


def select_both(
    conn: sqlite3.Connection, contact: str, message_id: str | None, now: float
) -> tuple[str | None, bool]:
    """The session row and whether the message was seen, in one trip to the worker thread."""
    seen = bool(message_id) and select_seen(conn, str(message_id), now)
    return select_session(conn, contact, now), seen


def select_seen(conn: sqlite3.Connection, message_id: str, now: float) -> bool:
    sql = "SELECT 1 FROM seen WHERE message_id = ? AND expires_at > ?"
    return conn.execute(sql, (message_id, now)).fetchone() is not None


@dataclass(frozen=True)
class Reading:
    """What `locked(load=True)` reads once the lock is won: the seen id (hashed) at `now`."""

    seen_key: str | None
    now: float


Read = tuple[str | None, bool]  # the session row's JSON, and whether the message was seen


@dataclass(frozen=True)
class Expiry:
    """When a commit's session and its seen message id expire (epoch seconds)."""

    session: float
    seen: float


def write(
    conn: sqlite3.Connection,
    contact: str,
    data: str | None,
    message_id: str | None,
    expiry: Expiry,
    token: str | None,
) -> bool:
    """One commit, inside a transaction (`together`), giving `token`'s lock row back;
    False (nothing written) when `token` lost the lock row."""
    if token is not None and not owns(conn, contact, token):
        return False
    if token is not None:  # the turn ends with its commit: the lock row goes with it
        release(conn, contact, token)
    if data is None:
        conn.execute("DELETE FROM sessions WHERE contact = ?", (contact,))
    else:
        conn.execute(
            "INSERT INTO sessions (contact, data, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (contact) DO UPDATE SET data = excluded.data, "
            "expires_at = excluded.expires_at",
            (contact, data, expiry.session),
        )
    if message_id is not None:
        conn.execute(
            "INSERT INTO seen (message_id, expires_at) VALUES (?, ?) "
            "ON CONFLICT (message_id) DO UPDATE SET expires_at = excluded.expires_at",
            (message_id, expiry.seen),
        )
    return True


def together(
    conn: sqlite3.Connection, writes: list[Callable[[sqlite3.Connection], Any]]
) -> list[Any]:
    """Several contacts' commits in one transaction: each is fenced on its own."""
    with transaction(conn):
        return [write(conn) for write in writes]


def owns(conn: sqlite3.Connection, contact: str, token: str) -> bool:
    # Wall clock, like the locks themselves: every process must agree on it.
    sql = "SELECT 1 FROM locks WHERE contact = ? AND owner = ? AND expires_at > ?"
    return conn.execute(sql, (contact, token, time.time())).fetchone() is not None


def renew(conn: sqlite3.Connection, held: list[tuple[str, str]], lease: float) -> list[bool]:
    sql = "UPDATE locks SET expires_at = ? WHERE contact = ? AND owner = ? AND expires_at > ?"
    now = time.time()
    return [conn.execute(sql, (now + lease, c, t, now)).rowcount == 1 for c, t in held]


def purge(conn: sqlite3.Connection, now: float) -> None:
    with transaction(conn):
        conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
        conn.execute("DELETE FROM seen WHERE expires_at <= ?", (now,))


def try_acquire(
    conn: sqlite3.Connection, contact: str, token: str, timeout: float, reading: Reading | None
) -> tuple[bool, Read | None]:
    """Take the lock row if free; once taken, read what `reading` asks in the same trip."""
    # Locks use the wall clock, not the injected one: every process must agree on it.
    now = time.time()
    won = conn.execute(ACQUIRE, (contact, token, now + timeout, now)).rowcount == 1
    if not won or reading is None:
        return won, None
    return True, select_both(conn, contact, reading.seen_key, reading.now)


def release(conn: sqlite3.Connection, contact: str, token: str) -> None:
    conn.execute("DELETE FROM locks WHERE contact = ? AND owner = ?", (contact, token))


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE … COMMIT, rolled back when anything fails."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
