"""palabre.db.thread: one thread runs an SQLite file's work for the event loop, in order."""

from __future__ import annotations

import asyncio
import threading

import pytest

from palabre.db import thread
from palabre.db.thread import DatabaseThread

pytestmark = pytest.mark.anyio


async def test_work_runs_in_one_other_thread_in_the_order_given():
    worker = DatabaseThread("test-db")
    seen: list[tuple[int, str]] = []

    def note(n: int) -> int:
        seen.append((n, threading.current_thread().name))
        return n * 10

    results = await asyncio.gather(*(worker.run(note, n) for n in range(50)))
    assert results == [n * 10 for n in range(50)]
    assert [n for n, _ in seen] == list(range(50)), "in the order given"
    assert {name for _, name in seen} == {"test-db"}, "all in the one thread, not the loop's"


async def test_what_the_work_raises_reaches_the_caller_and_the_thread_goes_on():
    worker = DatabaseThread("test-db")

    def fail() -> None:
        raise LookupError("no such row")

    with pytest.raises(LookupError, match="no such row"):
        await worker.run(fail)
    assert await worker.run(lambda: "still here") == "still here"


async def test_an_idle_thread_ends_and_a_new_call_starts_another(monkeypatch):
    monkeypatch.setattr(thread, "IDLE_SECONDS", 0.01)
    worker = DatabaseThread("test-db-idle")
    first = await worker.run(threading.get_ident)
    ended = await asyncio.to_thread(_wait_until_gone, "test-db-idle")
    assert ended, "the idle thread ended"
    assert await worker.run(lambda: 42) == 42, "a later call starts a new thread"
    assert first != threading.get_ident()


def _wait_until_gone(name: str) -> bool:
    """Whether no thread of that name is alive within 10 s (polled)."""
    import time

    deadline = time.monotonic() + 10
    while any(t.name == name for t in threading.enumerate()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


async def test_a_cancelled_caller_does_not_stop_the_others():
    worker = DatabaseThread("test-db")
    gate = threading.Event()
    blocked = asyncio.ensure_future(worker.run(gate.wait, 10))
    after = asyncio.ensure_future(worker.run(lambda: "after"))
    await asyncio.sleep(0)
    blocked.cancel()
    gate.set()
    assert await after == "after"
    with pytest.raises(asyncio.CancelledError):
        await blocked
