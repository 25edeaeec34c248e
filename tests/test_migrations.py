"""The migrations build exactly the tables palabre.db.schema declares, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from tests.db_fixtures import open_database, url

from palabre.db import migrate
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
