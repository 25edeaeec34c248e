"""The SessionStore contract, run against both backends: SQLite (embedded) and a real Redis."""

from __future__ import annotations

import asyncio
import inspect
import os
import socket
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis.asyncio as aioredis

from palabre.errors import LockLost, StoreError, StoreUnavailable
from palabre.stores.base import SessionStore, message_key
from palabre.stores.factory import open_store
from palabre.stores.redis import QUEUE_TTL_SECONDS, RedisSessionStore
from palabre.stores.sqlite import SQLiteSessionStore

pytestmark = pytest.mark.anyio

ARABIC_SESSION = {"step": "ask_name", "answers": {"name": "مرحبا بكم", "age": 31}, "tags": ["ب"]}


@dataclass
class Backend:
    """How to open a store: `target` is the SQLite file or the Redis URL."""

    kind: str
    target: str

    def open(self, **options: Any) -> SessionStore:
        if self.kind == "sqlite":
            return SQLiteSessionStore(self.target, **options)
        return RedisSessionStore(self.target, **options)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "data" / "sessions.db"))
    return Backend("redis", request.getfixturevalue("redis_url"))


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[SessionStore]:
    opened = backend.open()
    yield opened
    await opened.aclose()


async def bump(store: SessionStore, contact: str) -> None:
    """Read-modify-write a counter under the lock, yielding in between to invite races."""
    async with store.locked(contact):
        session = await store.get(contact) or {"count": 0}
        await anyio.sleep(0.001)
        session["count"] += 1
        await store.commit(contact, session)


# --- sessions and seen ids ----------------------------------------------------------------


async def test_store_keeps_the_session_store_protocol(store: SessionStore) -> None:
    assert isinstance(store, SessionStore)


async def test_unknown_contact_has_no_session(store: SessionStore) -> None:
    assert await store.get("+22500000000") is None


async def test_commit_then_get_round_trips_unicode(store: SessionStore) -> None:
    await store.commit("+22501", ARABIC_SESSION)
    assert await store.get("+22501") == ARABIC_SESSION


async def test_commit_none_deletes_the_session(store: SessionStore) -> None:
    await store.commit("+22501", ARABIC_SESSION)
    await store.commit("+22501", None, message_id="m-stop")
    assert await store.get("+22501") is None
    assert await store.seen("m-stop")


async def test_seen_only_after_commit_with_that_message_id(store: SessionStore) -> None:
    assert not await store.seen("m1")
    await store.commit("+22501", {"step": "a"}, message_id="m1")
    assert await store.seen("m1")
    assert not await store.seen("m2")


async def test_load_reads_seen_and_session_together(store: SessionStore) -> None:
    assert await store.load("+22501", "m1") == (False, None)
    assert await store.load("+22501", None) == (False, None)
    await store.commit("+22501", {"step": "a", "nom": "Ndèye"}, message_id="m1")
    assert await store.load("+22501", "m1") == (True, {"step": "a", "nom": "Ndèye"})
    assert await store.load("+22501", "m2") == (False, {"step": "a", "nom": "Ndèye"})
    assert await store.load("+22502", "m1") == (True, None)


@pytest.mark.parametrize("bad", [{1, 2}, object(), float("nan")], ids=["set", "object", "nan"])
async def test_unserialisable_session_writes_nothing(store: SessionStore, bad: object) -> None:
    await store.commit("+22501", {"step": "start"}, message_id="m1")
    with pytest.raises(StoreError) as caught:
        await store.commit("+22501", {"name": "Amina", "bad": bad}, message_id="m2")
    assert "Amina" not in str(caught.value), "errors must not carry session content"
    assert await store.get("+22501") == {"step": "start"}
    assert not await store.seen("m2"), "the message id must not be marked when the write failed"


# --- locks --------------------------------------------------------------------------------


async def test_lock_serialises_one_contact(store: SessionStore) -> None:
    async with anyio.create_task_group() as tasks:
        for _ in range(20):
            tasks.start_soon(bump, store, "+22501")
    assert await store.get("+22501") == {"count": 20}


async def test_different_contacts_do_not_block_each_other(store: SessionStore) -> None:
    async with store.locked("+22501"):
        with anyio.fail_after(2):
            async with store.locked("+22502"):
                pass


async def test_lock_is_released_when_the_body_raises(store: SessionStore) -> None:
    with pytest.raises(RuntimeError):
        async with store.locked("+22501"):
            raise RuntimeError("boom")
    with anyio.fail_after(2):
        async with store.locked("+22501"):
            pass


async def test_waiting_too_long_for_a_lock_raises(backend: Backend) -> None:
    holder, waiter = backend.open(), backend.open(lock_wait=0.2)
    try:
        async with holder.locked("+22501"):
            with pytest.raises(StoreError, match="timed out"):
                async with waiter.locked("+22501"):
                    pass
    finally:
        await holder.aclose()
        await waiter.aclose()


async def test_a_stalled_turn_loses_its_lease_and_its_commit_is_refused(backend: Backend) -> None:
    """The audit's case: a turn outlives its lease; another worker takes the contact over."""
    stalled, other = backend.open(lease_seconds=0.3), backend.open(lease_seconds=5)
    try:
        async with stalled.locked("c1") as lease:
            time.sleep(0.8)  # the event loop itself is stuck: the lease cannot be renewed
            with anyio.fail_after(10):
                async with other.locked("c1") as taken:
                    await other.commit("c1", {"by": "other"}, message_id="m2", lease=taken)
            with pytest.raises(LockLost):
                await stalled.commit("c1", {"by": "stalled"}, message_id="m1", lease=lease)
        assert await other.get("c1") == {"by": "other"}
        assert not await other.seen("m1"), "a fenced commit marks nothing seen either"
        with anyio.fail_after(5):
            async with other.locked("c1"):
                pass
    finally:
        await stalled.aclose()
        await other.aclose()


async def test_a_long_turn_keeps_its_lease_by_renewing_it(backend: Backend) -> None:
    holder, other = backend.open(lease_seconds=0.3), backend.open(lease_seconds=5)
    order: list[str] = []

    async def second() -> None:
        async with other.locked("c1"):
            order.append("other")

    try:
        async with anyio.create_task_group() as tasks, holder.locked("c1") as lease:
            tasks.start_soon(second)
            await anyio.sleep(1.2)  # four leases long; the renewer keeps it
            await holder.commit("c1", {"by": "holder"}, lease=lease)
            order.append("holder")
        assert order == ["holder", "other"]
        assert await holder.get("c1") == {"by": "holder"}
    finally:
        await holder.aclose()
        await other.aclose()


HOLD_AND_HANG = """
import asyncio, sys
from palabre.stores.base import message_key
from palabre.stores.redis import QUEUE_TTL_SECONDS, RedisSessionStore
from palabre.stores.sqlite import SQLiteSessionStore

async def main(kind, target):
    store = (SQLiteSessionStore if kind == "sqlite" else RedisSessionStore)(
        target, lease_seconds=0.5
    )
    async with store.locked("c1"):
        print("held", flush=True)
        await asyncio.Event().wait()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_a_killed_holder_frees_the_contact_once_its_lease_lapses(backend: Backend) -> None:
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLD_AND_HANG,
        backend.kind,
        backend.target,
        env=engine_env(),
        stdout=-1,
        stderr=-1,
    )
    assert worker.stdout is not None
    try:
        with anyio.fail_after(30):
            assert (await worker.stdout.readline()).strip() == b"held"
    finally:
        worker.kill()
        await worker.wait()
    store = backend.open()
    try:
        with anyio.fail_after(10):
            async with store.locked("c1") as lease:
                await store.commit("c1", {"after": "crash"}, lease=lease)
        assert await store.get("c1") == {"after": "crash"}
    finally:
        await store.aclose()


async def test_redis_turns_run_in_arrival_order_across_workers(redis_url: str) -> None:
    """Two stores stand for two workers; each message queues as it arrives, in a fixed order."""
    workers = [RedisSessionStore(redis_url), RedisSessionStore(redis_url)]
    applied: list[int] = []

    async def turn(index: int) -> None:
        async with workers[index % 2].locked("c1") as lease:
            applied.append(index)
            await workers[index % 2].commit("c1", {"last": index}, lease=lease)

    try:
        async with anyio.create_task_group() as tasks, workers[0].locked("c1") as first:
            for index in range(8):
                tasks.start_soon(turn, index)
                await wait_until(lambda n=index: queued(workers[1], n + 2))
            await workers[0].commit("c1", {"last": -1}, lease=first)
        assert applied == list(range(8)), "turns ran in the order their messages arrived"
        assert await workers[0].get("c1") == {"last": 7}
    finally:
        for store in workers:
            await store.aclose()


async def queued(store: RedisSessionStore, count: int) -> bool:
    return await store.waiting("c1") == count


async def wait_until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Wait for a state the test can observe (not a guess at how long something takes)."""
    with anyio.fail_after(10):
        while not await condition():
            await anyio.sleep(0.005)


def engine_env() -> dict[str, str]:
    engine_root = str(Path(inspect.getfile(SQLiteSessionStore)).resolve().parents[2])
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([engine_root, os.environ.get("PYTHONPATH", "")]),
    }


WORKER = """
import asyncio, sys, time
from palabre.stores.base import message_key
from palabre.stores.redis import QUEUE_TTL_SECONDS, RedisSessionStore
from palabre.stores.sqlite import SQLiteSessionStore

async def main(kind, target, start_at, rounds):
    store = (SQLiteSessionStore if kind == "sqlite" else RedisSessionStore)(target, lock_wait=60)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    for _ in range(rounds):
        async with store.locked("+22501"):
            session = await store.get("+22501") or {"count": 0}
            await asyncio.sleep(0.001)
            session["count"] += 1
            await store.commit("+22501", session)
    await store.aclose()

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])))
"""


async def test_lock_serialises_across_processes(backend: Backend, store: SessionStore) -> None:
    env = engine_env()
    start_at = str(time.time() + 1.5)  # a shared start line, so the workers really contend
    args = [sys.executable, "-c", WORKER, backend.kind, backend.target, start_at, "20"]
    with anyio.fail_after(60):
        workers = [
            await asyncio.create_subprocess_exec(*args, env=env, stderr=-1) for _ in range(3)
        ]
        for worker in workers:
            _, stderr = await worker.communicate()
            assert worker.returncode == 0, stderr.decode()
    assert await store.get("+22501") == {"count": 60}


# --- expiry -------------------------------------------------------------------------------


async def test_sqlite_records_expire_and_are_purged(tmp_path: Path) -> None:
    clock, path = FakeClock(), tmp_path / "sessions.db"
    store = SQLiteSessionStore(path, ttl_seconds=3600, clock=clock)
    await store.commit("+22501", {"step": "a"}, message_id="m1")
    clock.now += 3599
    assert await store.get("+22501") == {"step": "a"}
    assert await store.seen("m1")
    clock.now += 1
    assert await store.get("+22501") is None
    assert not await store.seen("m1")
    await store.commit("+22502", {"step": "b"})  # a later write purges expired rows
    await store.aclose()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT contact FROM sessions").fetchall() == [("+22502",)]
        assert conn.execute("SELECT COUNT(*) FROM seen").fetchone() == (0,)


async def test_sqlite_commit_refreshes_the_ttl(tmp_path: Path) -> None:
    clock = FakeClock()
    store = SQLiteSessionStore(tmp_path / "sessions.db", ttl_seconds=3600, clock=clock)
    await store.commit("+22501", {"step": "a"})
    clock.now += 3000
    await store.commit("+22501", {"step": "b"})
    clock.now += 3000
    assert await store.get("+22501") == {"step": "b"}
    await store.aclose()


async def assert_every_key_expires(url: str, *, ttl: int, lease: float) -> list[bytes]:
    client = aioredis.Redis.from_url(url)
    keys = [key async for key in client.scan_iter("*")]
    for key in keys:
        limit = lease if b":alive:" in key else QUEUE_TTL_SECONDS if b":queue:" in key else ttl
        pttl = await client.pttl(key)
        assert 0 < pttl <= limit * 1000, f"{key!r} has TTL {pttl} ms, want 0 < TTL <= {limit}s"
    await client.aclose()
    return keys


async def test_every_redis_key_carries_a_ttl(redis_url: str) -> None:
    store = RedisSessionStore(redis_url, ttl_seconds=600, lease_seconds=5)
    await store.commit("+22501", ARABIC_SESSION, message_id="m1")
    await store.commit("+22502", None, message_id="m2")
    assert len(await assert_every_key_expires(redis_url, ttl=600, lease=5)) == 3
    async with store.locked("+22501") as lease:
        keys = await assert_every_key_expires(redis_url, ttl=600, lease=5)
        assert b"palabre:queue:+22501" in keys
        assert f"palabre:alive:{lease.token}".encode() in keys
    await store.aclose()


async def test_redis_session_is_compact_json_and_disappears(redis_url: str) -> None:
    store = RedisSessionStore(redis_url, ttl_seconds=1)
    await store.commit("+22501", ARABIC_SESSION, message_id="m1")
    client = aioredis.Redis.from_url(redis_url)
    raw = (await client.get("palabre:session:+22501")).decode()
    await client.aclose()
    assert "مرحبا" in raw and ", " not in raw and '": ' not in raw
    await anyio.sleep(1.5)
    assert await store.get("+22501") is None
    assert not await store.seen("m1")
    await store.aclose()


async def test_redis_commit_refreshes_the_ttl(redis_url: str) -> None:
    store = RedisSessionStore(redis_url, ttl_seconds=600)
    client = aioredis.Redis.from_url(redis_url)
    await store.commit("+22501", {"step": "a"})
    await client.expire("palabre:session:+22501", 5)
    await store.commit("+22501", {"step": "b"})
    assert await client.ttl("palabre:session:+22501") > 500
    await client.aclose()
    await store.aclose()


# --- failures -----------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_redis_raises_store_unavailable() -> None:
    port = closed_port()
    store = RedisSessionStore(f"redis://:s3cret-pw@127.0.0.1:{port}/0")
    calls = [
        store.ping(),
        store.get("+22501"),
        store.seen("m1"),
        store.commit("+22501", {"step": "a"}, message_id="m1"),
    ]
    for call in calls:
        with pytest.raises(StoreUnavailable) as caught:
            await call
        assert f"127.0.0.1:{port}" in str(caught.value)
        assert "s3cret-pw" not in str(caught.value), "the Redis password must never be shown"
    with pytest.raises(StoreUnavailable):
        async with store.locked("+22501"):
            pytest.fail("the lock body must not run when Redis is down")
    await store.aclose()


async def test_sqlite_failed_transaction_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    store = SQLiteSessionStore(path)
    await store.commit("+22501", {"step": "start"})
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON seen "
            f"WHEN NEW.message_id = '{message_key('poison')}' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    with pytest.raises(StoreError):
        await store.commit("+22501", {"step": "next"}, message_id="poison")
    assert await store.get("+22501") == {"step": "start"}
    await store.aclose()


async def test_sqlite_errors_become_store_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="SQLite store"):
        SQLiteSessionStore(tmp_path)  # a directory, not a database file
    store = SQLiteSessionStore(tmp_path / "sessions.db")
    await store.aclose()
    with pytest.raises(StoreError, match="closed"):
        await store.get("+22501")


# --- factory -----------------------------------------------------------------


async def test_open_store_picks_the_backend(tmp_path: Path, redis_url: str) -> None:
    embedded = open_store(redis_url=None, data_dir=tmp_path / "data", ttl_seconds=60)
    assert isinstance(embedded, SQLiteSessionStore) and embedded.ttl_seconds == 60
    assert (tmp_path / "data" / "sessions.db").exists()
    shared = open_store(redis_url=redis_url, data_dir=tmp_path, ttl_seconds=60)
    assert isinstance(shared, RedisSessionStore) and shared.ttl_seconds == 60
    await shared.ping()
    await embedded.aclose()
    await shared.aclose()


async def test_redis_commit_under_the_lock_frees_the_lock_in_the_same_step(
    redis_url: str,
) -> None:
    import redis.asyncio as aioredis

    store = RedisSessionStore(redis_url, ttl_seconds=600)
    client = aioredis.from_url(redis_url)
    try:
        async with store.locked("+22501") as lease:
            assert await client.exists("palabre:queue:+22501")
            await store.commit(
                "+22501", {"step": "b"}, message_id="m7", lease=lease, ttl_seconds=120
            )
            assert not await client.exists("palabre:queue:+22501"), "commit frees the turn"
            assert not await client.exists(f"palabre:alive:{lease.token}")
            assert 0 < await client.ttl("palabre:session:+22501") <= 120, "the session's own TTL"
            seen = [key async for key in client.scan_iter("palabre:seen:*")]
            assert len(seen) == 1 and b"m7" not in seen[0], "message ids are hashed in keys"
            assert 120 < await client.ttl(seen[0]) <= 600
        # the next message of the contact gets the lock at once
        async with store.locked("+22501"):
            assert await store.load("+22501", "m7") == (True, {"step": "b"})
    finally:
        await client.aclose()
        await store.aclose()
