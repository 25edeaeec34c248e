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
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

from palabre.db.batches import GroupCommit
from palabre.errors import LockLost, StoreError
from palabre.stores import sqlite_sql as sql
from palabre.stores.base import DEFAULT_TTL_SECONDS, Session, message_key, session_ttl
from palabre.stores.lease import Lease, LeaseKeeper
from palabre.stores.locks import ContactLocks
from palabre.stores.sqlite_connection import SQLiteConnection

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
        self._db = SQLiteConnection(path, sql.SCHEMA)
        # The commits of a moment (other contacts' turns) share one transaction.
        self._commits: GroupCommit[sqlite3.Connection] = GroupCommit(
            lambda writes: self._db.run(sql.together, writes)
        )
        self._local = ContactLocks()
        self._keeper = LeaseKeeper(lease_seconds, self._renew)
        self._next_purge = 0.0

    async def get(self, contact: str) -> Session | None:
        """Return the contact's session, or None when there is none or it expired."""
        row = await self._db.run(sql.select_session, contact, self._clock())
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
        expiry = sql.Expiry(
            now + session_ttl(self.ttl_seconds, ttl_seconds), now + self.ttl_seconds
        )
        token = lease.token if lease else None
        seen = message_key(message_id) if message_id is not None else None
        if lease is not None:
            lease.ending = True
        written = await self._commits.run(
            lambda conn: sql.write(conn, contact, data, seen, expiry, token)
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
            await self._db.run(sql.purge, now)

    async def load(self, contact: str, message_id: str | None) -> tuple[bool, Session | None]:
        """Whether `message_id` was processed, and the contact's session."""
        seen_key = message_key(message_id) if message_id else None
        row, seen = await self._db.run(sql.select_both, contact, seen_key, self._clock())
        return seen, None if row is None else json.loads(row)

    async def seen(self, message_id: str) -> bool:
        """True when a commit already marked this message id, and it has not expired."""
        return await self._db.run(sql.select_seen, message_key(message_id), self._clock())

    @asynccontextmanager
    async def locked(
        self, contact: str, *, load: bool = False, message_id: str | None = None
    ) -> AsyncIterator[Lease]:
        """Hold the contact's lock, in this process and across processes sharing the file.
        With `load`, the lease carries `load(contact, message_id)`, read in the same trip
        to the database thread as the lock."""
        async with self._local.hold(contact):
            seen_key = message_key(message_id) if message_id else None
            reading = sql.Reading(seen_key, self._clock()) if load else None
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
                    await self._db.run(sql.release, contact, token)

    async def _renew(self, leases: list[Lease]) -> list[bool]:
        return await self._db.run(
            sql.renew, [(lease.contact, lease.token) for lease in leases], self.lease_seconds
        )

    async def _acquire(
        self, contact: str, reading: sql.Reading | None
    ) -> tuple[str, sql.Read | None]:
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
        self, contact: str, token: str, reading: sql.Reading | None
    ) -> tuple[bool, sql.Read | None]:
        # Shielded so a cancelled waiter that did get the row still gives it back.
        attempt = asyncio.ensure_future(
            self._db.run(sql.try_acquire, contact, token, self.lease_seconds, reading)
        )
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            attempt.add_done_callback(lambda done: self._release_if_won(done, contact, token))
            raise

    def _release_if_won(
        self, attempt: asyncio.Future[tuple[bool, sql.Read | None]], contact: str, token: str
    ) -> None:
        if not attempt.cancelled() and attempt.exception() is None and attempt.result()[0]:
            with suppress(StoreError):
                self._db.run_sync(sql.release, contact, token)

    async def ping(self) -> None:
        """Raise StoreError unless the database answers."""
        await self._db.run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def aclose(self) -> None:
        """Stop renewing leases and close the database file."""
        await self._keeper.aclose()
        await self._db.aclose()
