"""The migrations build exactly the tables palabre.db.schema declares, on both databases."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from tests.db_fixtures import open_database, url

from palabre.db import migrate
from palabre.db.database import Database
from palabre.db.schema import metadata

__all__ = ["url"]  # the fixture, shared in tests/db_fixtures.py

pytestmark = pytest.mark.anyio


async def test_the_migrated_database_matches_the_declared_schema(url: str) -> None:
    database = open_database(url)
    try:
        await migrate.upgrade(database)

        def differences(conn) -> list[object]:
            return list(compare_metadata(MigrationContext.configure(conn), metadata))

        assert await database.run(differences) == []
    finally:
        await database.aclose()


async def test_a_window_from_before_0008_is_kept_for_each_whatsapp_number(url: str) -> None:
    database = open_database(url)
    try:
        await migrate.upgrade(database, "0007")
        await sql(database, "INSERT INTO whatsapp_windows VALUES ('k1', 5.0)")
        await migrate.upgrade(database)
        rows = await sql(database, "SELECT transport, last_inbound_at FROM whatsapp_windows")
        async with database.connection() as conn:  # and back: one window per contact again
            await conn.run_sync(lambda c: command.downgrade(migrate.alembic_config(c), "0007"))
        back = await sql(database, "SELECT * FROM whatsapp_windows")
    finally:
        await database.aclose()
    assert sorted(rows) == [("meta_cloud", 5.0), ("twilio", 5.0)]
    assert back == [("k1", 5.0)]


async def test_the_answers_from_before_0009_are_kept_as_started_events(url: str) -> None:
    database = open_database(url)
    answer = '{"id": "T-1", "event": "ticket.called", "messages": ["m1"]}'
    try:
        await migrate.upgrade(database, "0008")
        await sql(
            database, f"INSERT INTO event_requests VALUES ('sq', 'T-1', 'd1', '{answer}', 5.0)"
        )
        await migrate.upgrade(database)
        kept = await sql(database, "SELECT key_name, event_id, digest, event, status, messages "
                         "FROM api_events")  # fmt: skip
        await sql(database, "INSERT INTO api_events (key_name, event_id, digest, event, "
                  "contact_key, request, status, created_at, updated_at) "
                  "VALUES ('sq', 'T-2', 'd2', 'ticket.called', 'k', '{}', 'queued', 6.0, 6.0)")  # fmt: skip
        async with database.connection() as conn:  # not back while an event waits
            with pytest.raises(RuntimeError, match="1 events still wait"):
                await conn.run_sync(lambda c: command.downgrade(migrate.alembic_config(c), "0008"))
        await sql(database, "DELETE FROM api_events WHERE event_id = 'T-2'")
        async with database.connection() as conn:
            await conn.run_sync(lambda c: command.downgrade(migrate.alembic_config(c), "0008"))
        back = await sql(database, "SELECT * FROM event_requests")
    finally:
        await database.aclose()
    assert kept == [("sq", "T-1", "d1", "ticket.called", "started", '["m1"]')]
    assert back == [("sq", "T-1", "d1", answer, 5.0)]


async def sql(database: Database, statement: str) -> list[tuple[object, ...]]:
    """Run one statement at whatever schema the database is; its rows."""
    async with database.connection() as conn:
        result = await conn.execute(text(statement))
        return [tuple(row) for row in result] if result.returns_rows else []
