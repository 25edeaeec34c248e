"""Alembic, run from code: no alembic.ini is needed at run time.

The migrations run on a connection of the `Database`'s own async engine, handed to
Alembic through `AsyncConnection.run_sync` (Alembic's recipe for sharing a connection).
So one engine, with its SQLite pragmas and its psycopg driver, serves both the stores
and the migrations, and no second, synchronous URL has to be derived from DATABASE_URL.

A schema is either at the head revision, new (an embedded SQLite file with no table is
created at the head), or refused: behind the code (run `palabre db upgrade`), or at a
revision this Palabre does not know. PostgreSQL is never migrated implicitly.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from palabre.errors import StoreError

if TYPE_CHECKING:
    from palabre.db.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"
# Serialises concurrent `palabre db upgrade` runs on one PostgreSQL database.
UPGRADE_LOCK = 0x70616C6272


def alembic_config(connection: Any = None) -> Config:
    """Alembic's configuration, built in code; `connection` is what env.py migrates."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The revision this Palabre's code expects."""
    return str(scripts().get_current_head())


async def current(database: Database) -> str | None:
    """The database's revision; None for a database never migrated."""
    async with database.connection() as conn:
        return await conn.run_sync(_current)


async def upgrade(database: Database, revision: str = "head") -> tuple[str | None, str | None]:
    """Apply the migrations up to `revision`; returns the revisions before and after."""
    async with database.connection(begin="BEGIN IMMEDIATE") as conn:
        if database.dialect == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK})
        before = await conn.run_sync(_current)
        await conn.run_sync(_upgrade, revision)
        return before, await conn.run_sync(_current)


async def prepare(database: Database) -> str | None:
    """Check the schema; create a new embedded database at the head.

    Returns a line to show when it created one; raises StoreError when the schema is
    behind or unknown, and StoreUnavailable when the database cannot be reached.
    """
    target = head()
    async with database.connection(begin="BEGIN IMMEDIATE") as conn:
        found, empty = await conn.run_sync(_state)
        if found == target:
            return None
        if found is None and empty and database.embedded:
            await conn.run_sync(_upgrade, "head")
            return f"created the embedded database {database.where} (schema {target})"
    raise StoreError(refusal(database.where, found, target))


def refusal(where: str, found: str | None, target: str) -> str:
    """Why a schema is refused, and what to do."""
    known = {script.revision for script in scripts().walk_revisions()}
    if found is not None and found not in known:
        return (
            f"the database at {where} is at schema {found}, which this Palabre does not "
            f"know (it expects {target}): a newer Palabre migrated it; upgrade Palabre"
        )
    return (
        f"the database at {where} is at schema {found or 'none (no tables)'}, behind this "
        f"Palabre ({target}): run `palabre db upgrade`"
    )


def _current(conn: Any) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _state(conn: Any) -> tuple[str | None, bool]:
    return _current(conn), not inspect(conn).get_table_names()


def _upgrade(conn: Any, revision: str) -> None:
    command.upgrade(alembic_config(conn), revision)
