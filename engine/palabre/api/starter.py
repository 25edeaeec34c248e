"""The event starter: runs the flows of the events the API took (palabre.api.queue), in
every process that runs background work (`palabre serve`, `palabre worker`).

It holds up to `concurrency` events at once, never two of one person (the claim's rule),
so a person whose session is busy holds back only their own events. Each event's flows
start as `palabre start` starts a flow (Engine.start): their messages become outbox rows
of kind `event`, sent by the outbox workers, after replies and before broadcasts, under
the consent the flow's `triggers: {purpose: ...}` names (`service` by default; a
`broadcast` one reaches no one who said STOP); `ttl` makes them `expired` rather than
late. Each start's idempotency key hashes the API key's name, the event id and the flow:
an event claimed again after its starter died finds its first messages, and nothing is
sent twice.

A store that fails gives the event back for a later try (sooner at first, then each
minute); any other failure is the event's own, which then `failed` with a reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
import uuid
from collections.abc import Awaitable

from palabre.addresses import read_address
from palabre.api.queue import EXPIRED, FAILED, STARTED, Claimed
from palabre.errors import StoreError
from palabre.logs import exception_summary
from palabre.outbox.policy import RetryPolicy
from palabre.outbox.rows import Origin
from palabre.runtime.engine import Engine
from palabre.runtime.entrances import Contact
from palabre.runtime.messages import Reply
from palabre.starts import default_transport
from palabre.transports import Host
from palabre.waits import woken

log = logging.getLogger("palabre.api")

POLL_SECONDS = 0.5  # how soon the events another process took are seen
MAX_BACKOFF = 60.0
UNRENDERED = (
    "the flow '{flow}' failed on this event's data: a field its texts use is missing or "
    "too long (the log says which)"
)
Outcome = tuple[str, list[str], str | None]  # status, messages, error


def start_key(key_name: str, event_id: str, flow_id: str) -> str:
    """The idempotency key of one flow started by one event of one API key (hashed: no
    choice of names and ids can make two of them alike)."""
    what = json.dumps([key_name, event_id, flow_id], ensure_ascii=False)
    return "event:" + hashlib.sha256(what.encode("utf-8", "surrogatepass")).hexdigest()[:32]


async def run_starter(host: Host) -> None:
    """The `register_workers` job: the event starter of this process."""
    await EventStarter(host.engine).run()


class EventStarter:
    """Claims the events taken and starts their flows."""

    def __init__(
        self, engine: Engine, *, concurrency: int = 32, poll: float = POLL_SECONDS
    ) -> None:
        if engine.stores is None:
            raise ValueError("the event starter needs the durable stores")
        self.engine, self.queue = engine, engine.stores.events
        self.concurrency, self.poll = concurrency, poll
        self.batch = max(1, concurrency // 4)
        # A claim is held as long as an outbox row's (PALABRE_OUTBOX_LEASE, 60 s).
        self.lease = RetryPolicy.from_settings(engine.settings).lease
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.flights: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Start events until cancelled; the events in flight then lapse to another."""
        try:
            while True:
                self.queue.wakeup.clear()  # before the claim: a wake after it is not lost
                free = self.concurrency - len(self.flights)
                # A claim is a write: claim a batch at a time, not one per event that ends.
                if free >= self.batch or not self.flights:
                    claimed = await self._claim(free)
                    for event in claimed:
                        self._fly(event)
                    if len(claimed) == free:
                        continue  # more may be waiting
                await woken(self.queue.wakeup, self.poll)
        finally:
            for task in self.flights:
                task.cancel()
            await asyncio.gather(*self.flights, return_exceptions=True)

    async def _claim(self, limit: int) -> list[Claimed]:
        """Up to `limit` events; none while the database fails (the starts in flight go on)."""
        try:
            return await self.queue.claim(self.id, limit, self.lease)
        except StoreError as exc:
            log.warning("the database failed while claiming events: %s", exc)
            return []

    async def start_now(self, key_name: str, event_id: str) -> None:
        """Start this one event here and now (`palabre notify`), unless it cannot be
        claimed: started already, held by a starter, or an earlier event of theirs waits."""
        for event in await self.queue.claim(self.id, 1, self.lease, only=(key_name, event_id)):
            await self.start(event)

    def _fly(self, event: Claimed) -> None:
        task = asyncio.create_task(self.start(event))
        self.flights.add(task)
        task.add_done_callback(self._landed)

    def _landed(self, task: asyncio.Task[None]) -> None:
        self.flights.discard(task)
        self.queue.wake()  # room for one more, and the person's next event may go now

    async def start(self, event: Claimed) -> None:
        """Start `event`'s flows and record what became of it."""
        try:
            status, messages, error = await self._outcome(event)
        except StoreError as exc:
            await self._later(event, exc)
            return
        except Exception as exc:  # the event's own failure: retrying would fail again
            log.error("an event failed to start: %s", exception_summary(exc), extra=_ids(event))
            status, messages, error = FAILED, [], "Palabre failed to start it (see the log)"
        await _quietly(self.queue.finish(event, self.id, status, messages, error), event)

    async def _outcome(self, event: Claimed) -> Outcome:
        if event.expires_at is not None and self.queue.clock() >= event.expires_at:
            return EXPIRED, [], None  # a late "your turn is in 5 minutes" is never sent
        flows = self.engine.flows_for_event(event.event)
        if not flows:
            return FAILED, [], "no flow is triggered by this event any more"
        uids: list[str] = []
        for flow_id in flows:
            reply = await self._start_flow(event, flow_id)
            if any(e.name == "turn_failed" for e in reply.events):  # it sent nothing
                return FAILED, uids, UNRENDERED.format(flow=flow_id)
            uids += reply.uids
        return STARTED, uids, None

    async def _start_flow(self, event: Claimed, flow_id: str) -> Reply:
        request, engine = event.request, self.engine
        address = read_address(request["to"])
        transport = default_transport(address, engine.settings)
        contact = Contact(request["to"], transport, address.channel, request["lang"])
        purpose = engine.flows[flow_id].event_purpose
        told = {"name": event.event, "id": event.event_id, "data": request["data"]}
        return await engine.start(
            contact,
            flow_id,
            key=start_key(event.key_name, event.event_id, flow_id),
            origin=Origin("event", purpose, expires_at=event.expires_at),
            variables={"event": told},
        )

    async def _later(self, event: Claimed, exc: StoreError) -> None:
        wait = min(MAX_BACKOFF, 2.0**event.attempts)
        log.warning("a store failed while starting an event: %s; again in %g s", exc, wait)
        await _quietly(self.queue.again_in(event, self.id, wait), event)


def _ids(event: Claimed) -> dict[str, object]:
    return {"event": event.event, "api_key": event.key_name}


async def _quietly(write: Awaitable[None], event: Claimed) -> None:
    """A write about a claimed event; if the store fails, its claim lapses and it is
    started again (nothing twice: see start_key)."""
    try:
        await write
    except StoreError as exc:
        log.warning("a store failed recording an event: %s", exc, extra=_ids(event))
