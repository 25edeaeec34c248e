"""Fixtures for tests of the durable stores on both databases: `url` (a new, empty
database: the embedded SQLite file, then the PostgreSQL server tests/conftest.py starts),
`clock` (moved by hand) and `stores` (every store, migrated to the head); with the
`Clock`, the `SECRET` and `open_database` they use.

A test module uses them by importing them and naming them in its `__all__`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from palabre.db import migrate
from palabre.db.database import Database
from palabre.db.url import database_url
from palabre.stores.bundle import Stores

SECRET = b"db-stores-test-secret-" + b"0" * 32


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_767_225_600.0

    def __call__(self) -> float:
        return self.now


def open_database(url: str) -> Database:
    return Database(database_url(url, Path(".")))


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new, empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/palabre.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def stores(url: str, clock: Clock) -> AsyncIterator[Stores]:
    """Every store, on a database migrated to the head as `palabre db upgrade` does."""
    database = open_database(url)
    await migrate.upgrade(database)
    opened = Stores.on(database, SECRET, clock)
    yield opened
    await opened.aclose()
