"""Starting a broadcast's flow for its audience, a few seconds ahead of the rate cap.

The workers (`palabre serve`, `palabre worker`) send; this keeps their queue fed. Lines
are started in file order, each with the idempotency key `broadcast:{id}:{line}`, while
fewer than `ahead` of the broadcast's messages wait in the outbox. Starting a contact's
flow only seconds before its message leaves keeps the conversation where the contact
will find it, and makes Ctrl-C a pause: what is queued goes out, the rest waits for
`palabre broadcast resume`.

Nothing is lost or sent twice, wherever the process stops: a line is marked started
after its flow's rows are queued, and a line started again (the process stopped in
between) gets its first rows back from the outbox, not new ones (Engine.start). Consent
is read again just before each start, and once more by the worker before each send.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from palabre.broadcasts.audience import NO_CONSENT, Recipient
from palabre.broadcasts.preview import contact_of
from palabre.broadcasts.store import Broadcast, BroadcastStore, Progress
from palabre.outbox.rows import Origin
from palabre.runtime.engine import Engine
from palabre.stores.consent import ConsentLedger, channel_of
from palabre.waits import woken

# How far ahead of its sender the queue is kept: about a restart of the command, so that
# a resumed broadcast hardly leaves its sender idle. A STOP sent meanwhile still counts:
# the worker reads the consent again before each send.
AHEAD_SECONDS = 5.0
BATCH = 100  # lines started between two looks at the outbox


async def consented(ledger: ConsentLedger, lines: list[Recipient], purpose: str) -> set[str]:
    """The contact keys among `lines` that `purpose` may reach now, each on its address's
    channel: a query per channel (and per 500 keys), not one per line."""
    by_channel: dict[str, list[str]] = {}
    for recipient in lines:
        if recipient.contact_key is not None:
            by_channel.setdefault(channel_of(recipient.address), []).append(recipient.contact_key)
    allowed: set[str] = set()
    for channel, keys in by_channel.items():
        allowed |= await ledger.allowed(keys, channel, purpose)
    return allowed


def ahead_for(per_second: float | None) -> int:
    """How many of the broadcast's messages may wait in the outbox at once."""
    if per_second is None:
        return 500
    return max(10, math.ceil(per_second * AHEAD_SECONDS))


class Feeder:
    """Starts a broadcast's lines as its messages leave, until all are settled."""

    def __init__(
        self,
        engine: Engine,
        store: BroadcastStore,
        broadcast: Broadcast,
        transport_of: Callable[[Recipient], str],
        *,
        ahead: int,
        poll: float = 0.2,
    ) -> None:
        self.engine, self.store, self.broadcast = engine, store, broadcast
        self.transport_of, self.ahead, self.poll = transport_of, ahead, poll
        self.origin = Origin("broadcast", broadcast.purpose, broadcast.id)
        self.stop = asyncio.Event()  # set: start no more lines (a pause, not a loss)
        self.last_line = 0  # the last line read: the next are read after it

    async def run(self, show: Callable[[Progress], None]) -> Progress:
        """Feed until every message is settled or `stop` is set; returns the last count."""
        while True:
            progress = await self.store.progress(self.broadcast.id)
            show(progress)
            if progress.finished or self.stop.is_set():
                return progress
            room = min(BATCH, self.ahead - progress.unsent)
            if progress.waiting and room > 0:
                lines = await self.store.waiting(self.broadcast.id, room, self.last_line)
                self.last_line = max((r.line for r in lines), default=self.last_line)
                await self._start(lines)
                continue
            await woken(self.stop, self.poll)  # a stop wakes the wait at once

    async def _start(self, lines: list[Recipient]) -> None:
        started, refused = [], []
        allowed = await self._consented(lines)
        for recipient in lines:
            if self.stop.is_set():
                break
            if recipient.contact_key in allowed:
                await self._start_one(recipient)
                started.append(recipient.line)
            else:
                refused.append(recipient.line)
        await self.store.started(self.broadcast.id, started)
        await self.store.refused(self.broadcast.id, refused, NO_CONSENT)

    async def _consented(self, lines: list[Recipient]) -> set[str]:
        """The contact keys among `lines` whose consent stands now."""
        stores = self.engine.stores
        assert stores is not None
        return await consented(stores.consent, lines, self.origin.purpose)

    async def _start_one(self, recipient: Recipient) -> None:
        contact = contact_of(recipient, self.transport_of(recipient))
        params = {**self.broadcast.params, **recipient.params}
        key = f"broadcast:{self.broadcast.id}:{recipient.line}"
        await self.engine.start(contact, self.broadcast.flow, params, key=key, origin=self.origin)
