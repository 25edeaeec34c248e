"""API keys remembered for a while: a key in force costs one database read per
REMEMBER_SECONDS, a revocation is seen once that time passes, and an unknown or revoked
key is never remembered (on a clock moved by hand, the reads counted)."""

from __future__ import annotations

import asyncio
from contextlib import contextmanager
from pathlib import Path

from tests.db_fixtures import Clock

from palabre.api.keys import REMEMBER_SECONDS, ApiKeys
from palabre.db import migrate
from palabre.db.database import Database


class CountedReads:
    """A database whose reads (a read transaction, or one trip with `run`) are counted."""

    def __init__(self, database: Database) -> None:
        self.database, self.reads = database, 0

    def read(self):
        self.reads += 1
        return self.database.read()

    async def run(self, *args, **kwargs):
        self.reads += 1
        return await self.database.run(*args, **kwargs)

    def write(self):
        return self.database.write()


@contextmanager
def api_keys(tmp_path: Path):
    """ApiKeys on a migrated SQLite database, its reads counted, on a clock moved by hand."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}")
    asyncio.run(migrate.upgrade(database))
    counted, clock = CountedReads(database), Clock()
    try:
        yield ApiKeys(counted, b"k" * 32, clock), counted, clock  # type: ignore[arg-type]
    finally:
        asyncio.run(database.aclose())


def test_a_key_in_force_is_remembered_and_a_revocation_seen_once_that_time_passes(tmp_path):
    with api_keys(tmp_path) as (keys, counted, clock):
        key = asyncio.run(keys.create("fleet"))
        other = ApiKeys(counted.database, keys.hasher, clock)  # another process's view
        assert asyncio.run(keys.owner(key)) == "fleet"
        assert asyncio.run(keys.owner(key)) == "fleet" and counted.reads == 1, "one read"
        assert asyncio.run(other.revoke("fleet"))
        clock.now += REMEMBER_SECONDS - 1
        still = asyncio.run(keys.owner(key))
        clock.now += 1
        after = asyncio.run(keys.owner(key))
        seen_twice = counted.reads
    assert still == "fleet", f"remembered for {REMEMBER_SECONDS:g} s, as documented"
    assert after is None and seen_twice == 2, "then read again, and found revoked"


def test_an_unknown_or_revoked_key_is_never_remembered(tmp_path):
    with api_keys(tmp_path) as (keys, counted, _):
        key = asyncio.run(keys.create("fleet"))
        unknown = "plb_" + "z" * 43
        assert [asyncio.run(keys.owner(unknown)) for _ in range(2)] == [None, None]
        assert counted.reads == 2, "each unknown key is read again"
        assert asyncio.run(keys.owner(key)) == "fleet"
        assert asyncio.run(keys.revoke("fleet"))
        refused = asyncio.run(keys.owner(key))
        assert asyncio.run(keys.owner(unknown)) is None
    assert refused is None, "revoked here: refused here at once"
