"""The engine: applies what the entrances return, one contact at a time.

`handle(inbound)` and `start(contact, flow_id, params)` are the conversation service.
Each waits for the contact's turn (a lease, in arrival order), loads the session, runs
the pure entrance (palabre.runtime.entrances), and then, in this order:
1. queues the turn's messages as held outbox rows (palabre.outbox.replies), under keys
   that name the inbound message (or the start), so running the turn again queues
   nothing new;
2. commits the new session with the processed message id, in one write fenced by the lease;
3. releases the rows to the outbox worker;
4. publishes the events to plugins (`on_event`).
The session, the seen id and the messages thus take effect together: a crash or a failed
commit before 3 sends nothing, and the redelivered message runs the turn again, finds
its rows and releases them. A message already processed gets the replies it was first
given (`message_duplicated`), and releases them if a crash came between 2 and 3.
Contacts are known to the stores and the logs by their keyed hash only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from palabre.actions import Action
from palabre.config import Settings
from palabre.errors import ConfigError
from palabre.flow.model import Flow
from palabre.outbox.replies import inbound_key_of, queue_replies, queue_start, start_key_of
from palabre.outbox.rows import STARTED, Origin
from palabre.purposes import BROADCAST
from palabre.runtime import entrances
from palabre.runtime.entrances import Contact, Outcome
from palabre.runtime.keywords import START
from palabre.runtime.messages import Event, Inbound, Reply
from palabre.runtime.speech import Speech
from palabre.runtime.world import EXPIRY_NOTICE_SECONDS, World
from palabre.stores.base import SessionStore, message_key
from palabre.stores.consent import channel_of
from palabre.stores.lease import Lease

if TYPE_CHECKING:
    from palabre.metrics import Metrics
    from palabre.stores.bundle import Stores

__all__ = ["EXPIRY_NOTICE_SECONDS", "Engine", "EventContext"]

log = logging.getLogger("palabre.engine")
CONSENT_EVENTS = ("consent_withdrawn", "consent_given")  # STOP, START, consent steps


@dataclass(frozen=True)
class EventContext:
    """Where an event happened: ids only, never an address or a message body."""

    contact_key: str
    flow_id: str | None
    transport: str
    message_id: str | None = None


Publish = Callable[[Event, EventContext], Awaitable[None]]


class Engine(World):
    """Runs conversations for a set of flows over a session store."""

    def __init__(
        self,
        flows: Mapping[str, Flow],
        store: SessionStore,
        speech: Speech,
        actions: Mapping[str, Action],
        settings: Settings,
        *,
        stores: Stores | None = None,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        publish: Publish | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        super().__init__(flows, speech, actions, settings, stores=stores, http=http, clock=clock)
        self.store = store
        self.publish = publish
        self.metrics = metrics  # observes each turn's duration (None: not measured)

    async def aclose(self) -> None:
        """Close the session store and the durable stores."""
        await self.store.aclose()
        if self.stores is not None:
            await self.stores.aclose()

    async def forget(self, contact: str) -> None:
        """Delete the contact's session (a new conversation starts with the next message)."""
        await self.store.commit(self.contact_key(contact), None)

    async def handle(self, inbound: Inbound, *, inline: bool = False) -> Reply:
        """Process one inbound message; its replies are outbox rows before the session is
        committed. `inline`: the transport answers them itself (TwiML, the simulator) and
        marks them sent; otherwise the outbox worker sends them. Raises StoreError when a
        store fails."""
        key = self.contact_key(inbound.contact)
        async with self.store.locked(key, load=True, message_id=inbound.message_id) as lease:
            began = time.perf_counter()
            seen, session = lease.loaded or await self.store.load(key, inbound.message_id)
            if seen:
                return await self._again(key, inbound_key_of(inbound), "message_duplicated")
            channel = channel_of(inbound.contact, inbound.channel)
            withdrawn = await self._broadcasts_withdrawn(key, channel, inbound.text)
            outcome = await entrances.resume(self, session, inbound, broadcasts_withdrawn=withdrawn)
            uids = await self._queue_replies(outcome, inbound, key, inline, channel)
            once = message_key(inbound.message_id) if inbound.message_id else None
            await self._record_consent(outcome, key, channel, once)
            await self._commit(key, outcome, lease, inbound.message_id, began)
            if not inline:  # inline rows are never held: the transport answers them
                await self._release(uids)
        await self._publish(outcome, key, inbound.transport, inbound.message_id)
        return Reply(outcome.messages, outcome.events, uids)

    async def start(
        self,
        contact: Contact,
        flow_id: str,
        params: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        origin: Origin = STARTED,
        variables: Mapping[str, Any] | None = None,
    ) -> Reply:
        """Begin `flow_id` for a contact who did not write; its messages are outbox rows
        (kind `start`, or the `origin`'s: a broadcast) before the session is committed.
        The same `key` (an idempotency key) for the same contact starts the flow once:
        later calls get the first rows back, with the event `start_duplicated`.
        `variables` are readable in the flow's templates (an outside event: `event`)."""
        contact_key = self.contact_key(contact.address)
        start_key = start_key_of(contact_key, key)
        async with self.store.locked(contact_key, load=True) as lease:
            began = time.perf_counter()
            if key is not None and await self._queued(start_key):
                return await self._again(contact_key, start_key, "start_duplicated")
            _, session = lease.loaded or await self.store.load(contact_key, None)
            outcome = await entrances.start(self, contact, flow_id, params, session, variables)
            uids = await self._queue_start(outcome, contact_key, start_key, origin)
            channel = channel_of(contact.address, contact.channel)
            await self._record_consent(outcome, contact_key, channel, start_key)
            await self._commit(contact_key, outcome, lease, None, began)
            await self._release(uids)
        await self._publish(outcome, contact_key, contact.transport, None)
        return Reply(outcome.messages, outcome.events, uids)

    async def _queue_replies(
        self, outcome: Outcome, inbound: Inbound, key: str, inline: bool, channel: str
    ) -> list[str]:
        if self.stores is None:  # the terminal and bare tests: nothing is sent
            return []
        whatsapp = channel == "whatsapp" and bool(inbound.transport)
        return await queue_replies(
            self.stores.outbox, inbound, outcome.messages, key, inline, on_whatsapp=whatsapp
        )

    async def _broadcasts_withdrawn(self, key: str, channel: str, text: str) -> bool:
        """Whether a START word in `text` would give broadcasts back: read only then."""
        keyword = self.consent_keyword(text)
        if self.stores is None or keyword is None or keyword.kind != START:
            return False
        return await self.stores.consent.withdrawn(key, channel, BROADCAST)

    async def _record_consent(
        self, outcome: Outcome, key: str, channel: str, once: str | None
    ) -> None:
        """The consent a turn gave or withdrew (STOP, START, a `consent` step), in the
        ledger before the turn commits; `once` (the message's or the start's key) makes a
        turn run again record it once."""
        if self.stores is None:
            return
        changes = [event for event in outcome.events if event.name in CONSENT_EVENTS]
        for n, event in enumerate(changes):
            await self.stores.consent.record(
                key,
                event.data["purpose"],
                event.name == "consent_given",
                event.data["source"],
                channel=channel,
                detail=event.data.get("detail"),
                key=f"{once}:consent:{n}" if once else None,
            )

    async def _queue_start(
        self, outcome: Outcome, key: str, start_key: str, origin: Origin
    ) -> list[str]:
        if self.stores is None:
            raise ConfigError("starting a flow needs the durable stores (the outbox)")
        return await queue_start(self.stores.outbox, outcome.messages, key, start_key, origin)

    async def _release(self, uids: list[str]) -> None:
        if self.stores is not None:
            await self.stores.outbox.release(uids)

    async def _queued(self, answers: str) -> bool:
        return self.stores is not None and await self.stores.outbox.released(answers)

    async def _again(self, key: str, answers: str | None, event: str) -> Reply:
        """What a message (or a start) already processed is given: its first rows."""
        log.info("duplicate ignored", extra={"contact": key, "event": event})
        if self.stores is None or answers is None:
            return Reply(events=[Event(event)])
        messages = await self.stores.outbox.replies_to(answers)
        uids = [message.id for message in messages]
        await self.stores.outbox.release(uids)  # a crash may have come before the release
        return Reply(messages, [Event(event)], uids)

    async def _commit(
        self, key: str, outcome: Outcome, lease: Lease, message_id: str | None, began: float
    ) -> None:
        await self.store.commit(
            key,
            outcome.session,
            message_id=message_id,
            lease=lease,
            ttl_seconds=self.session_ttl(outcome.session),
        )
        log.info("turn done", extra={"contact": key, "events": outcome.event_names()})
        if self.metrics is not None:
            self.metrics.turn(time.perf_counter() - began)

    async def _publish(
        self, outcome: Outcome, key: str, transport: str, message_id: str | None
    ) -> None:
        """Tell plugins what happened, after the commit; a failing plugin breaks nothing."""
        if self.publish is None:
            return
        flow = outcome.session["flow"] if outcome.session else None
        context = EventContext(key, flow, transport, message_id)
        for event in outcome.events:
            await self.publish(event, context)
