"""Fixtures for tests of the durable stores on both databases: `url` (a new, empty
database: the embedded SQLite file, then the PostgreSQL server tests/conftest.py starts),
`clock` (moved by hand) and `stores` (every store, migrated to the head).

A test module uses them by importing them and naming them in its `__all__`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.test_db_stores import SECRET, Clock, open_database

from palabre.db import migrate
from palabre.stores.bundle import Stores


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/palabre.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def stores(url: str, clock: Clock) -> AsyncIterator[Stores]:
    database = open_database(url)
    await migrate.upgrade(database)
    opened = Stores.on(database, SECRET, clock)
    yield opened
    await opened.aclose()
