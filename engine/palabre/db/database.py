"""One database, opened as an SQLAlchemy `AsyncEngine`: SQLite by default, PostgreSQL on demand.

The embedded SQLite file runs in WAL mode with synchronous=NORMAL, overwrites what it
deletes (`secure_delete`), checks foreign keys and waits for a busy file rather than
failing at once. Its writes
take the file's write lock when they begin (`BEGIN IMMEDIATE`), so a read-then-write is
never overtaken by another process. PostgreSQL is reached through psycopg 3.

Store code that runs on every message writes its transaction as one plain function of a
synchronous `Connection` and hands it to `run`: on SQLite the whole transaction then
takes one trip to the database's thread (palabre.db.thread; through aiosqlite, each
statement took several), and on PostgreSQL it runs on the async connection through
SQLAlchemy's `run_sync`.

The schema is checked before the first use (see `palabre.db.migrate.prepare`): a database
behind the code is refused with `palabre db upgrade` in the message. Every database
failure becomes `StoreUnavailable` (cannot reach, busy) or `StoreError`, in one line that
never shows the password.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from palabre.config import Settings
from palabre.db.thread import DatabaseThread
from palabre.db.url import database_url, database_url_problem, shown
from palabre.errors import ConfigError, StoreError, StoreUnavailable

BUSY_TIMEOUT_MS = 5000
CONNECT_TIMEOUT_SECONDS = 5
# How each transaction begins on SQLite (an execution option of the connection).
BEGIN = "palabre_begin"
P = ParamSpec("P")
T = TypeVar("T")


class Database:
    """The engine, its transactions, and the one-time schema check."""

    def __init__(self, url: URL | str) -> None:
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        self.where = shown(self.url)
        self.engine = _create_engine(self.url)
        self._sync: Engine | None = None  # SQLite only: the engine `run` uses, in a thread
        self._thread = DatabaseThread("palabre-database")  # SQLite only: where `run` runs
        self._held: Connection | None = None  # SQLite only: `run`'s connection, in its thread
        self._ready = False
        self._readying = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """DATABASE_URL when set, else `PALABRE_DATA_DIR/palabre.db` (ConfigError if malformed)."""
        try:
            return cls(database_url(settings.database_url, settings.data_dir))
        except (ValueError, ArgumentError):
            raise ConfigError(str(database_url_problem(settings.database_url))) from None

    @property
    def embedded(self) -> bool:
        """True for SQLite: a file, no server, created at the current schema when new."""
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction, for reads."""
        await self.ready()
        async with self.connection() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction that writes: committed at the end, rolled back
        when anything fails."""
        await self.ready()
        async with self.connection(begin="BEGIN IMMEDIATE") as conn:
            yield conn

    @asynccontextmanager
    async def connection(self, begin: str = "BEGIN") -> AsyncIterator[AsyncConnection]:
        """A transaction without the schema check (for migrations); `begin` is SQLite's
        BEGIN statement ("" for none, as `PRAGMA wal_checkpoint` needs)."""
        try:
            async with self.engine.connect() as conn:
                await conn.execution_options(**{BEGIN: begin})
                async with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            raise self.failure(exc) from exc

    async def run(
        self,
        transaction: Callable[Concatenate[Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """`transaction(connection, *args, **kwargs)` in one transaction that may write
        (committed when it returns, rolled back when it raises); returns its result."""
        await self.ready()

        def bound(conn: Connection) -> T:
            return transaction(conn, *args, **kwargs)

        if not self.embedded:
            async with self.connection() as conn:
                return await conn.run_sync(bound)
        return await self._thread.run(self._in_thread, bound)

    def _in_thread(self, transaction: Callable[[Connection], T]) -> T:
        try:
            conn = self._connection()
            with conn.begin():
                return transaction(conn)
        except SQLAlchemyError as exc:
            self._let_go()  # a connection that failed is not trusted again
            raise self.failure(exc) from exc

    def _connection(self) -> Connection:
        """The connection `run` keeps between transactions (only its thread uses it):
        a checkout and a close on every trip cost more than most transactions."""
        if self._held is None:
            held = self._sync_engine().connect()
            self._held = held.execution_options(**{BEGIN: "BEGIN IMMEDIATE"})
        return self._held

    def _let_go(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            with contextlib.suppress(SQLAlchemyError):
                held.close()

    def _sync_engine(self) -> Engine:
        if self._sync is None:
            url = self.url.set(drivername="sqlite")
            # One thread at a time per connection, but any thread: `run` uses the pool's.
            engine = create_engine(url, connect_args={"check_same_thread": False})
            event.listen(engine, "connect", _on_sqlite_connect)
            event.listen(engine, "begin", _on_sqlite_begin)
            self._sync = engine
        return self._sync

    async def ready(self) -> None:
        """Check the schema once (creating a new embedded database); StoreError if behind."""
        if self._ready:
            return
        async with self._readying:
            if not self._ready:
                await self.prepare()

    async def prepare(self) -> str | None:
        """Check the schema now; returns a line to show when a new database was created."""
        from palabre.db.migrate import prepare

        note = await prepare(self)
        self._ready = True
        return note

    async def ping(self) -> None:
        """Raise StoreError unless the database answers."""
        async with self.read() as conn:
            await conn.execute(text("SELECT 1"))

    async def checkpoint(self) -> None:
        """SQLite: fold the write-ahead log into the file, so deleted rows leave both."""
        if self.embedded:
            async with self.connection(begin="") as conn:
                await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def failure(self, exc: SQLAlchemyError) -> StoreError:
        """The StoreError to raise for a database failure: one line, no password."""
        detail = _first_line(getattr(exc, "orig", None) or exc)
        if self.url.password:
            detail = detail.replace(str(self.url.password), "***")
        if isinstance(exc, OperationalError | InterfaceError):
            return StoreUnavailable(
                f"the database at {self.where} is unavailable ({detail}); check that it is "
                "running and that DATABASE_URL names it"
            )
        return StoreError(f"the database at {self.where} failed: {detail}")

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self._sync is not None:
            await self._thread.run(self._let_go)
            await asyncio.to_thread(self._sync.dispose)


def _create_engine(url: URL) -> AsyncEngine:
    if url.get_backend_name() != "sqlite":
        connect = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
        return create_async_engine(url, pool_pre_ping=True, connect_args=connect)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url)
    event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, record: Any) -> None:
    # Transactions are begun by _on_sqlite_begin, not by the driver (SQLAlchemy's recipe).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        # Each commit reaches the WAL before it returns, so a killed process loses nothing
        # committed; only a power cut may undo the last commits (never corrupt the file),
        # and saves one fsync per commit. PostgreSQL is for what must survive a machine.
        "synchronous=NORMAL",
        "secure_delete=ON",  # deleted rows (completed registrations) leave no readable trace
        "foreign_keys=ON",
        f"busy_timeout={BUSY_TIMEOUT_MS}",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _on_sqlite_begin(conn: Any) -> None:
    statement = conn.get_execution_options().get(BEGIN, "BEGIN")
    if not statement:
        return
    # On the driver's cursor: SQLAlchemy's execution of a BEGIN cost more than the BEGIN.
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(statement)
    except conn.dialect.loaded_dbapi.Error as exc:  # "database is locked": StoreUnavailable
        raise OperationalError(statement, None, exc) from exc
    finally:
        cursor.close()


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__
