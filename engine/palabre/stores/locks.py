"""First-come, first-served locks per contact inside one process.

Both stores queue a contact's messages here before taking their cross-process lock, so
messages that reach this process in order are processed in that order (asyncio.Lock
wakes its waiters in FIFO order), and only one of them at a time polls the shared lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class ContactLocks:
    """One asyncio.Lock per contact, dropped once nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, contact: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(contact, (asyncio.Lock(), 0))
        self._locks[contact] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[contact]
            if users == 1:
                del self._locks[contact]
            else:
                self._locks[contact] = (lock, users - 1)
