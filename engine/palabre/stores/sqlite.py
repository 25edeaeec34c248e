"""The embedded session store: one SQLite file, no server, durable (WAL).

Sessions and seen message ids expire after their last write; expired rows are invisible
to reads and purged now and then. Contacts are keyed hashes, never addresses, and
deleted rows are overwritten (`secure_delete`). `locked()` serialises one contact's work
inside the process, first come first served (an asyncio.Lock), and across processes
sharing the file (a row in the `locks` table, a lease renewed while the turn runs and
taken over once it lapses). Across processes it serialises but does not order: the
embedded store is for one `serve` process; several workers share Redis.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from palabre.db.batches import GroupCommit
from palabre.errors import LockLost, StoreError
from palabre.stores.base import DEFAULT_TTL_SECONDS, Session, message_key, session_ttl
from palabre.stores.lease import Lease, LeaseKeeper
from palabre.stores.locks import ContactLocks
from palabre.stores.sqlite_connection import SQLiteConnection

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    contact TEXT PRIMARY KEY, data TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS seen (
    message_id TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS locks (
    contact TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL);
"""

# Take the lock when it is free, or when its holder let it go stale.
_ACQUIRE = """
INSERT INTO locks (contact, owner, expires_at) VALUES (?, ?, ?)
ON CONFLICT (contact) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE locks.expires_at <= ?
"""

_PURGE_EVERY_SECONDS = 60.0
# A dead process's contacts wait at most about this long; a live turn renews every third.
LEASE_SECONDS = 6.0


def dumps_session(session: Session) -> str:
    """Serialise a session as compact JSON; StoreError (naming no content) when it cannot be."""
    try:
        return json.dumps(session, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        kind = type(exc).__name__
        raise StoreError(
            f"the session is not JSON-serialisable ({kind}); nothing was written"
        ) from exc


class SQLiteSessionStore:
    """A `SessionStore` in one SQLite file: the embedded default, for one machine."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
        lease_seconds: float = LEASE_SECONDS,
        lock_wait: float = 20.0,
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
        self.ttl_seconds = ttl_seconds
        self.lease_seconds = lease_seconds
        self.lock_wait = lock_wait
        self._clock = clock
        self._db = SQLiteConnection(path, _SCHEMA)
        # The commits of a moment (other contacts' turns) share one transaction.
        self._commits: GroupCommit[sqlite3.Connection] = GroupCommit(
            lambda writes: self._db.run(_together, writes)
        )
        self._local = ContactLocks()
        self._keeper = LeaseKeeper(lease_seconds, self._renew)
        self._next_purge = 0.0

    async def get(self, contact: str) -> Session | None:
        """Return the contact's session, or None when there is none or it expired."""
        row = await self._db.run(_select_session, contact, self._clock())
        return None if row is None else json.loads(row)

    async def commit(
        self,
        contact: str,
        session: Session | None,
        *,
        message_id: str | None = None,
        lease: Lease | None = None,
        ttl_seconds: int | None = None,
    ) -> None:
        """Save (None: delete) the session and mark `message_id` seen, in one transaction.

        With a lease, only while this turn still owns the contact's lock row (else
        `LockLost`, nothing written).
        """
        data = None if session is None else dumps_session(session)
        now = self._clock()
        expiry = Expiry(now + session_ttl(self.ttl_seconds, ttl_seconds), now + self.ttl_seconds)
        token = lease.token if lease else None
        seen = message_key(message_id) if message_id is not None else None
        if lease is not None:
            lease.ending = True
        written = await self._commits.run(
            lambda conn: _write(conn, contact, data, seen, expiry, token)
        )
        if not written:
            raise LockLost(
                "this turn lost its contact lease before committing (a stalled worker?); "
                "nothing was written, and the provider's retry will be processed anew"
            )
        if lease is not None:
            lease.released = True  # the same transaction gave the lock row back
        if now >= self._next_purge:
            self._next_purge = now + _PURGE_EVERY_SECONDS
            await self._db.run(_purge, now)

    async def load(self, contact: str, message_id: str | None) -> tuple[bool, Session | None]:
        """Whether `message_id` was processed, and the contact's session."""
        seen_key = message_key(message_id) if message_id else None
        row, seen = await self._db.run(_select_both, contact, seen_key, self._clock())
        return seen, None if row is None else json.loads(row)

    async def seen(self, message_id: str) -> bool:
        """True when a commit already marked this message id, and it has not expired."""
        return await self._db.run(_select_seen, message_key(message_id), self._clock())

    @asynccontextmanager
    async def locked(
        self, contact: str, *, load: bool = False, message_id: str | None = None
    ) -> AsyncIterator[Lease]:
        """Hold the contact's lock, in this process and across processes sharing the file.
        With `load`, the lease carries `load(contact, message_id)`, read in the same trip
        to the database thread as the lock."""
        async with self._local.hold(contact):
            seen_key = message_key(message_id) if message_id else None
            reading = Reading(seen_key, self._clock()) if load else None
            token, read = await self._acquire(contact, reading)
            lease = Lease(contact, token)
            if read is not None:
                row, seen = read
                lease.loaded = (seen, None if row is None else json.loads(row))
            self._keeper.keep(lease)
            try:
                yield lease
            finally:
                self._keeper.drop(lease)
                if not lease.released:
                    await self._db.run(_release, contact, token)

    async def _renew(self, leases: list[Lease]) -> list[bool]:
        return await self._db.run(
            _renew, [(lease.contact, lease.token) for lease in leases], self.lease_seconds
        )

    async def _acquire(self, contact: str, reading: Reading | None) -> tuple[str, Read | None]:
        token = secrets.token_hex(16)
        deadline = time.monotonic() + self.lock_wait
        delay = 0.005
        while not (won := await self._try_acquire(contact, token, reading))[0]:
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"timed out after {self.lock_wait:g}s waiting for a contact lock in "
                    f"{self._db.path}; another process holds it"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
        return token, won[1]

    async def _try_acquire(
        self, contact: str, token: str, reading: Reading | None
    ) -> tuple[bool, Read | None]:
        # Shielded so a cancelled waiter that did get the row still gives it back.
        attempt = asyncio.ensure_future(
            self._db.run(_try_acquire, contact, token, self.lease_seconds, reading)
        )
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            attempt.add_done_callback(lambda done: self._release_if_won(done, contact, token))
            raise

    def _release_if_won(
        self, attempt: asyncio.Future[tuple[bool, Read | None]], contact: str, token: str
    ) -> None:
        if not attempt.cancelled() and attempt.exception() is None and attempt.result()[0]:
            with suppress(StoreError):
                self._db.run_sync(_release, contact, token)

    async def ping(self) -> None:
        """Raise StoreError unless the database answers."""
        await self._db.run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def aclose(self) -> None:
        """Stop renewing leases and close the database file."""
        await self._keeper.aclose()
        await self._db.aclose()


def _select_session(conn: sqlite3.Connection, contact: str, now: float) -> str | None:
    sql = "SELECT data FROM sessions WHERE contact = ? AND expires_at > ?"
    row = conn.execute(sql, (contact, now)).fetchone()
    return None if row is None else str(row[0])


def _select_both(
    conn: sqlite3.Connection, contact: str, message_id: str | None, now: float
) -> tuple[str | None, bool]:
    """The session row and whether the message was seen, in one trip to the worker thread."""
    seen = bool(message_id) and _select_seen(conn, str(message_id), now)
    return _select_session(conn, contact, now), seen


def _select_seen(conn: sqlite3.Connection, message_id: str, now: float) -> bool:
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


def _write(
    conn: sqlite3.Connection,
    contact: str,
    data: str | None,
    message_id: str | None,
    expiry: Expiry,
    token: str | None,
) -> bool:
    """One commit, inside a transaction (`_together`), giving `token`'s lock row back;
    False (nothing written) when `token` lost the lock row."""
    if token is not None and not _owns(conn, contact, token):
        return False
    if token is not None:  # the turn ends with its commit: the lock row goes with it
        _release(conn, contact, token)
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


def _together(
    conn: sqlite3.Connection, writes: list[Callable[[sqlite3.Connection], Any]]
) -> list[Any]:
    """Several contacts' commits in one transaction: each is fenced on its own."""
    with _transaction(conn):
        return [write(conn) for write in writes]


def _owns(conn: sqlite3.Connection, contact: str, token: str) -> bool:
    # Wall clock, like the locks themselves: every process must agree on it.
    sql = "SELECT 1 FROM locks WHERE contact = ? AND owner = ? AND expires_at > ?"
    return conn.execute(sql, (contact, token, time.time())).fetchone() is not None


def _renew(conn: sqlite3.Connection, held: list[tuple[str, str]], lease: float) -> list[bool]:
    sql = "UPDATE locks SET expires_at = ? WHERE contact = ? AND owner = ? AND expires_at > ?"
    now = time.time()
    return [conn.execute(sql, (now + lease, c, t, now)).rowcount == 1 for c, t in held]


def _purge(conn: sqlite3.Connection, now: float) -> None:
    with _transaction(conn):
        conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
        conn.execute("DELETE FROM seen WHERE expires_at <= ?", (now,))


def _try_acquire(
    conn: sqlite3.Connection, contact: str, token: str, timeout: float, reading: Reading | None
) -> tuple[bool, Read | None]:
    """Take the lock row if free; once taken, read what `reading` asks in the same trip."""
    # Locks use the wall clock, not the injected one: every process must agree on it.
    now = time.time()
    won = conn.execute(_ACQUIRE, (contact, token, now + timeout, now)).rowcount == 1
    if not won or reading is None:
        return won, None
    return True, _select_both(conn, contact, reading.seen_key, reading.now)


def _release(conn: sqlite3.Connection, contact: str, token: str) -> None:
    conn.execute("DELETE FROM locks WHERE contact = ? AND owner = ?", (contact, token))


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE … COMMIT, rolled back when anything fails."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
