"""One thread that runs an SQLite file's transactions for the event loop, one at a time.

sqlite3 blocks, so the embedded stores run their work off the event loop. `asyncio.to_thread`
did it for about 107 µs of CPU per call here (a context copy, the default executor's
queue and locks, two futures chained across threads); a queue read by one thread that
hands each result back with `call_soon_threadsafe` costs about 44 µs. One thread per file
also matches SQLite, which lets one writer in at a time anyway.

The thread starts on the first call and ends after `IDLE_SECONDS` without work, so a
store that is never closed leaves no thread behind. Work runs in the order it is given.
A caller that stops waiting (cancelled) does not stop its work, as with `to_thread`.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
IDLE_SECONDS = 30.0
Work = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


class DatabaseThread:
    """Runs `fn(*args)` in this object's one thread and gives the result to the loop."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: queue.SimpleQueue[Work] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in the thread; its result, or what it raised."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        with self._lock:  # the thread may be ending: it checks the queue under this lock
            self._queue.put((loop, done, fn, args))
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
                self._thread.start()
        return await done

    def _work(self) -> None:
        while True:
            try:
                loop, done, fn, args = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            try:
                outcome: tuple[bool, Any] = (True, fn(*args))
            except BaseException as exc:  # handed to the caller, whatever it is
                outcome = (False, exc)
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting
                loop.call_soon_threadsafe(_settle, done, outcome)


def _settle(done: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if done.cancelled():
        return
    succeeded, value = outcome
    if succeeded:
        done.set_result(value)
    else:
        done.set_exception(value)
