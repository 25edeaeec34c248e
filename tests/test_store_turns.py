"""A turn's first read and last write ride on taking and giving back the contact's turn:
`locked(load=True)` carries what `load` would read, and a fenced commit frees the turn in
the same step. Run against both backends, as in tests/test_stores.py."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
import redis.asyncio as aioredis
from tests.test_stores import Backend, backend, store

from palabre.errors import LockLost
from palabre.stores.base import SessionStore
from palabre.stores.lease import Lease, LeaseKeeper
from palabre.stores.redis import RedisSessionStore
from palabre.stores.sqlite import SQLiteSessionStore

__all__ = ["backend", "store"]  # the fixtures, shared with tests/test_stores.py

pytestmark = pytest.mark.anyio


async def test_a_loading_lease_carries_what_load_reads(store: SessionStore) -> None:
    async with store.locked("c1", load=True, message_id="m1") as lease:
        assert lease.loaded == (False, None), "a new contact, an unseen message"
        await store.commit("c1", {"step": "a"}, message_id="m1", lease=lease)
    async with store.locked("c1", load=True, message_id="m1") as lease:
        assert lease.loaded == (True, {"step": "a"}), "the message was processed"
    async with store.locked("c1", load=True, message_id="m2") as lease:
        assert lease.loaded == (False, {"step": "a"})
    async with store.locked("c1", load=True) as lease:
        assert lease.loaded == (False, {"step": "a"}), "no message id: never seen"
    async with store.locked("c1") as lease:
        assert lease.loaded is None, "nothing read unless asked"


async def test_a_turn_that_waited_reads_what_the_turn_before_it_committed(
    backend: Backend,
) -> None:
    first, second = backend.open(), backend.open()
    try:
        async with first.locked("c1", load=True, message_id="m1") as holding:
            waiting = asyncio.create_task(_loaded(second, "m1"))
            while await _queued(second, "c1") < 2:  # Redis: the second turn has arrived
                await asyncio.sleep(0.01)
            await first.commit("c1", {"by": "first"}, message_id="m1", lease=holding)
        with anyio.fail_after(10):
            assert await waiting == (True, {"by": "first"}), "not what it saw on arrival"
    finally:
        await first.aclose()
        await second.aclose()


async def _loaded(store: SessionStore, message_id: str) -> tuple[bool, object] | None:
    async with store.locked("c1", load=True, message_id=message_id) as lease:
        return lease.loaded


async def _queued(store: SessionStore, contact: str) -> int:
    # SQLite has no queue to look at: its waiter retries the lock row, whenever it comes.
    return await store.waiting(contact) if isinstance(store, RedisSessionStore) else 2


async def test_redis_reads_a_free_turn_in_its_arrival_script(redis_url: str) -> None:
    store = RedisSessionStore(redis_url)
    client = aioredis.from_url(redis_url)
    try:
        await store.commit("c1", {"step": "a"}, message_id="m1")
        before = await _calls(client)
        async with store.locked("c1", load=True, message_id="m1") as lease:
            assert lease.loaded == (True, {"step": "a"})
        after = await _calls(client)
        # commandstats counts the script's own calls too: only the client's MGET is telling
        assert after.get("mget", 0) == before.get("mget", 0), "no second round trip"
    finally:
        await client.aclose()
        await store.aclose()


async def _calls(client: aioredis.Redis) -> dict[str, int]:
    stats = await client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


async def test_an_sqlite_commit_gives_the_lock_row_back_in_its_transaction(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sessions.db"
    store = SQLiteSessionStore(path)
    try:
        async with store.locked("c1") as lease:
            await store.commit("c1", {"step": "b"}, message_id="m1", lease=lease)
            assert lease.released
            with sqlite3.connect(path) as conn:
                held = conn.execute("SELECT count(*) FROM locks").fetchone()[0]
            assert held == 0, "the commit freed the contact for another process"
        async with store.locked("c1", load=True, message_id="m1") as lease:
            assert lease.loaded == (True, {"step": "b"})
    finally:
        await store.aclose()


async def one_renewal(
    leases: list[Lease], answer: Callable[[list[Lease]], list[bool]]
) -> list[list[str]]:
    """Keep `leases` until the renewer's first round, answered by `answer`; the tokens
    each round asked for."""
    renewed: list[list[str]] = []
    called = asyncio.Event()

    async def renew(asked: list[Lease]) -> list[bool]:
        renewed.append([lease.token for lease in asked])
        called.set()
        return answer(asked)

    keeper = LeaseKeeper(0.03, renew)
    for lease in leases:
        keeper.keep(lease)
    try:
        with anyio.fail_after(5):
            await called.wait()
    finally:
        await keeper.aclose()
    return renewed


async def test_the_renewer_leaves_a_lease_its_commit_is_freeing_alone() -> None:
    running, committed = Lease("c1"), Lease("c2", ending=True)
    renewed = await one_renewal([committed, running], lambda asked: [True] * len(asked))
    assert renewed[0] == [running.token], "a committed turn's lease is over: not renewed"
    assert not committed.lost, "nor reported as lapsed"


async def test_a_renewal_that_loses_to_the_commit_is_no_lapse() -> None:
    """The renewer may ask for a lease just as its commit frees it: no lapse to report."""
    turn = Lease("c1")

    def commit_won(asked: list[Lease]) -> list[bool]:
        turn.ending = True  # the commit went out while the renewal was on its way
        return [False]

    await one_renewal([turn], commit_won)
    assert not turn.lost


async def test_a_renewal_that_finds_the_lease_gone_reports_a_lapse() -> None:
    turn = Lease("c1")
    await one_renewal([turn], lambda asked: [False])
    assert turn.lost, "a turn still running whose lease lapsed knows it"


async def test_sqlite_commits_of_a_moment_share_a_transaction_each_fenced_alone(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sessions.db"
    store = SQLiteSessionStore(path)
    try:
        async with store.locked("c1") as stale, store.locked("c2") as live:
            with sqlite3.connect(path) as conn:  # c1's lease lapsed and was taken over
                conn.execute("UPDATE locks SET owner = 'another' WHERE contact = 'c1'")
            lost, saved = await asyncio.gather(
                store.commit("c1", {"by": "stale"}, message_id="m1", lease=stale),
                store.commit("c2", {"by": "live"}, message_id="m2", lease=live),
                return_exceptions=True,
            )
        assert isinstance(lost, LockLost) and saved is None
        assert await store.load("c1", "m1") == (False, None), "the fenced commit wrote nothing"
        assert await store.load("c2", "m2") == (True, {"by": "live"}), "the other one did"
    finally:
        await store.aclose()
