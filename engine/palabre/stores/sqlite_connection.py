"""One sqlite3 connection shared by threads, for the embedded session store.

Calls run in the file's own thread (palabre.db.thread), one at a time; sqlite3 errors
become StoreError (StoreUnavailable when the file stays busy). The file runs in WAL mode
and overwrites what it deletes (`secure_delete`).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from palabre.db.thread import DatabaseThread
from palabre.errors import StoreError, StoreUnavailable

T = TypeVar("T")


class SQLiteConnection:
    """One sqlite3 connection shared by threads: calls run in its thread, one at a time.

    sqlite3 errors become StoreError (StoreUnavailable when the file stays busy).
    """

    def __init__(self, path: str | os.PathLike[str], schema: str) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()  # `run_sync` may also be called from other threads
        self._thread = DatabaseThread("palabre-sessions")
        self._conn: sqlite3.Connection | None = None
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = self._guard(self._open, schema)

    def _open(self, schema: str) -> sqlite3.Connection:
        # isolation_level=None: autocommit, transactions are opened explicitly with BEGIN.
        conn = sqlite3.connect(
            self.path, timeout=5.0, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # see palabre.db.database: WAL, no fsync
        # Deleted rows (finished sessions, completed registrations) leave no readable trace.
        conn.execute("PRAGMA secure_delete=ON")
        conn.executescript(schema)
        return conn

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(connection, *args)` in a worker thread, holding the connection's lock."""
        return await self._thread.run(self.run_sync, fn, *args)

    def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(connection, *args)` in this thread, holding the connection's lock."""
        with self._lock:
            if self._conn is None:
                raise StoreError(f"the SQLite store at {self.path} is closed")
            return self._guard(fn, self._conn, *args)

    def _guard(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise StoreUnavailable(f"SQLite store at {self.path} is busy: {exc}") from exc
            raise StoreError(f"SQLite store at {self.path} failed: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store at {self.path} failed: {exc}") from exc

    async def aclose(self) -> None:
        """Close the connection; later calls raise StoreError."""
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
