"""Hold a contact's turn in Redis from a test, to line messages up in a known order.

While the test holds the turn, every message of that contact queues behind it, in the
order it reached Palabre. The test sends one message, waits until the store shows it
queued, then sends the next: arrival order is fixed by the test, not by thread timing.
Releasing the turn lets the queued messages run.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from palabre.contacts import contact_hasher, contact_key
from palabre.stores.lease import Lease
from palabre.stores.redis import RedisSessionStore

T = TypeVar("T")


def key_of(secret: str, address: str) -> str:
    """The contact key a server with this PALABRE_SECRET uses for `address`."""
    return contact_key(contact_hasher(secret.encode()), address)


class HeldTurn:
    """`with HeldTurn(redis_url, key) as held:` holds the contact's turn until the block ends."""

    def __init__(self, redis_url: str, contact: str) -> None:
        self.contact = contact
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._store = RedisSessionStore(redis_url)
        self._holding: Any = None
        self._lease: Lease | None = None

    def __enter__(self) -> HeldTurn:
        self._thread.start()
        self._holding = self._store.locked(self.contact)
        self._lease = self._run(self._holding.__aenter__())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._run(self._holding.__aexit__(None, None, None))
            self._run(self._store.aclose())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def wait_for_queue(self, length: int, timeout: float = 20.0) -> None:
        """Return once `length` turns (this one included) are queued for the contact."""
        _poll(lambda: self._run(self._store.waiting(self.contact)), length, timeout)

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)


def wait_for_queue(redis_url: str, contact: str, length: int, timeout: float = 20.0) -> None:
    """Return once `length` turns of the contact are queued (running one included)."""

    async def queued() -> int:
        store = RedisSessionStore(redis_url)
        try:
            return await store.waiting(contact)
        finally:
            await store.aclose()

    _poll(lambda: asyncio.run(queued()), length, timeout)


def _poll(queued: Callable[[], int], length: int, timeout: float) -> None:
    """Wait until the store shows `length` queued turns: an observed state, not a guess."""
    deadline = time.monotonic() + timeout
    while (count := queued()) != length:
        if count > length or time.monotonic() > deadline:
            raise AssertionError(f"{count} turns queued, expected {length}")
        time.sleep(0.005)
