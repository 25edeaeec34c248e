"""Group commit: the writes several sends ask for at about the same time share one
transaction, so the database commits once for all of them, not once per message. Each
caller still waits until its own write is committed. A write is a plain function of a
synchronous connection, and a whole batch takes one trip to the database.

One `GroupCommit` per database and process (`group_commit`) also queues this process's
outbox writes one after the other: on SQLite, writers that overlap would otherwise wait
for the file's lock in SQLite's busy handler, which sleeps up to 100 ms at a time. The
embedded session store batches its commits the same way, on its own file.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Executable

from palabre.db.database import Database
from palabre.errors import StoreError

log = logging.getLogger("palabre.db")

C = TypeVar("C")  # the connection a write is given: SQLAlchemy's, or sqlite3's
Work = Callable[[C], Any]
RunBatch = Callable[[list[Work[C]]], Awaitable[list[Any]]]


class GroupCommit(Generic[C]):
    """Runs the writes given to `run` in as few transactions as they arrive in:
    `run_batch(works)` runs a batch in one transaction and returns each work's result."""

    def __init__(self, run_batch: RunBatch[C]) -> None:
        self.run_batch = run_batch
        self._waiting: list[tuple[Work[C], asyncio.Future[Any]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def run(self, work: Work[C]) -> Any:
        """Run `work(conn)` in a transaction shared with the writes asked meanwhile; returns
        its result once committed (the store's error when the transaction failed)."""
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((work, done))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        return await done

    def soon(self, work: Work[C], what: str) -> None:
        """Run `work(conn)` with the next batch, without waiting for it: for a write whose
        caller has nothing to do with its outcome. A failure is logged, naming `what`."""
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.add_done_callback(lambda future: _log_failure(future, what))
        self._waiting.append((work, done))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())

    async def settle(self) -> None:
        """Wait until every write given so far is committed or has failed (before closing)."""
        while self._flushing is not None and not self._flushing.done():
            await asyncio.shield(self._flushing)

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                results = await self.run_batch([work for work, _ in batch])
            except Exception as exc:  # every write of the batch failed with it
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for (_, done), result in zip(batch, results, strict=True):
                if not done.done():
                    done.set_result(result)


class DatabaseCommits(GroupCommit[Connection]):
    """Group commit on a `Database`: each batch is one `Database.run`."""

    def __init__(self, database: Database) -> None:
        super().__init__(lambda works: database.run(_together, works))

    async def execute(self, statement: Executable, values: dict[str, Any] | None = None) -> None:
        """Run one statement in the shared transaction, its result read and closed (SQLite
        cannot commit while a statement's rows are still unread)."""
        await self.run(lambda conn: conn.execute(statement, values).close())


def _log_failure(done: asyncio.Future[Any], what: str) -> None:
    if done.cancelled():
        return
    exc = done.exception()
    if isinstance(exc, StoreError):
        log.warning("%s not written: %s", what, exc)
    elif exc is not None:
        log.error("%s not written", what, exc_info=exc)


def _together(conn: Connection, works: list[Work[Connection]]) -> list[Any]:
    return [work(conn) for work in works]


_SHARED: weakref.WeakKeyDictionary[Database, DatabaseCommits] = weakref.WeakKeyDictionary()


def group_commit(database: Database) -> DatabaseCommits:
    """This process's group commit on `database`, shared by the outbox and the log."""
    found = _SHARED.get(database)
    if found is None:
        found = _SHARED[database] = DatabaseCommits(database)
    return found
