"""Statements on the driver's cursor (palabre.db.driver), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, Table, Text, bindparam, select
from sqlalchemy import update as update_of
from sqlalchemy.dialects import sqlite
from tests.db_fixtures import open_database, url

from palabre.db import migrate
from palabre.db.driver import DriverStatement
from palabre.db.inserts import insert_new

__all__ = ["url"]  # the fixture, shared in tests/db_fixtures.py

pytestmark = pytest.mark.anyio

metadata = MetaData()
notes = Table(
    "driver_notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", Text, nullable=False, unique=True),
    Column("state", Text, nullable=False),
)
MARK = DriverStatement(
    update_of(notes)
    .where(notes.c.key == bindparam("b_key"), notes.c.state == "new")
    # "done" and "new" are held by the statement, the key given at each run
    .values(state="done")
)


def _insert(conn: Connection, key: str) -> object:
    statement = DriverStatement(insert_new(conn.dialect.name, notes))
    return statement.first(conn, {"key": key, "state": "new"})


def _states(conn: Connection) -> dict[str, str]:
    return {key: state for key, state in conn.execute(select(notes.c.key, notes.c.state))}


async def test_driver_statements_write_in_the_connections_transaction(url: str) -> None:
    database = open_database(url)
    await migrate.upgrade(database)
    await database.run(lambda conn: metadata.create_all(conn))

    def inserts(conn: Connection) -> list[object]:
        return [_insert(conn, "a"), _insert(conn, "a"), _insert(conn, "b")]

    first, again, other = await database.run(inserts)
    assert first is not None and other is not None, "a new key returns its row"
    assert again is None, "a key taken already inserts nothing and returns no row"

    def mark(conn: Connection) -> list[int]:
        return [MARK.rowcount(conn, {"b_key": "a"}), MARK.rowcount(conn, {"b_key": "a"})]

    assert await database.run(mark) == [1, 0], "only the row still 'new' changes, once"
    assert await database.run(_states) == {"a": "done", "b": "new"}

    def mark_then_fail(conn: Connection) -> None:
        MARK.rowcount(conn, {"b_key": "b"})
        raise RuntimeError("the transaction fails after the statement ran")

    with pytest.raises(RuntimeError):
        await database.run(mark_then_fail)
    assert await database.run(_states) == {"a": "done", "b": "new"}, "rolled back with it"
    await database.run(lambda conn: metadata.drop_all(conn))
    await database.aclose()


def test_a_statement_with_an_in_list_is_refused_when_first_run() -> None:
    listed = DriverStatement(update_of(notes).where(notes.c.state.in_(["a", "b"])))
    with pytest.raises(ValueError, match="IN list"):
        listed.rowcount(_Unrun(sqlite.dialect()), {})  # type: ignore[arg-type]


class _Unrun:
    """A connection the refused statement never reaches (it fails while compiling)."""

    def __init__(self, dialect: object) -> None:
        self.dialect = dialect
