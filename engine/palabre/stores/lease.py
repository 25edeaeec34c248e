"""Leases on contacts, kept alive by one renewer per store while their turns run.

A lease lapses `seconds` after its last renewal. The renewer renews every live lease
each `seconds / 3`, in one batch, so a turn that waits on a slow action keeps its
contact, while a worker that dies (or stalls for a whole lease) loses it and its
commit is refused (fenced). One task per store, not one per turn: a turn of a few
milliseconds costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("palabre.stores")

Renew = Callable[[list["Lease"]], Awaitable[list[bool]]]


@dataclass(eq=False)
class Lease:
    """One turn's hold on a contact: its random token, whether renewal failed, whether
    its commit is under way (`ending`: the commit frees it) or already released it, and
    what `locked(load=True)` read with it: (whether the message was seen, the session)."""

    contact: str
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    lost: bool = False
    ending: bool = False
    released: bool = False
    loaded: tuple[bool, dict[str, Any] | None] | None = None


class LeaseKeeper:
    """Renews the live leases of one store, in the background, every `seconds / 3`."""

    def __init__(self, seconds: float, renew: Renew) -> None:
        if seconds <= 0:
            raise ValueError(f"a lease must last a positive time, got {seconds}")
        self.seconds = seconds
        self._renew = renew
        self._live: set[Lease] = set()
        self._task: asyncio.Task[None] | None = None

    def keep(self, lease: Lease) -> None:
        """Renew `lease` until `drop`."""
        self._live.add(lease)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="palabre-lease-renewer")

    def drop(self, lease: Lease) -> None:
        self._live.discard(lease)

    async def _run(self) -> None:
        while self._live:
            await asyncio.sleep(self.seconds / 3)
            # A lease its commit frees is over, though its turn still ends its work.
            leases = [lease for lease in self._live if not lease.ending]
            if not leases:
                continue
            try:
                held = await self._renew(leases)
            except Exception as exc:  # the store is down: the next round tries again
                log.warning("lease renewal failed: %s", type(exc).__name__)
                continue
            for lease, ok in zip(leases, held, strict=True):
                if not ok and not lease.lost and not lease.ending:  # a commit may have won
                    lease.lost = True
                    log.warning("a contact lease lapsed before its turn ended")

    async def aclose(self) -> None:
        self._live.clear()
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
