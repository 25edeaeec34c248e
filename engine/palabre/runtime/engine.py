"""The engine: applies what the entrances return, one contact at a time.

`handle(inbound)` and `start(contact, flow_id, params)` are the conversation service: each
waits for the contact's turn (a lease, in arrival order), loads the session, runs the pure
entrance (palabre.runtime.entrances), commits the new session with the processed message
id in one atomic write fenced by the lease, then publishes the events to plugins
(`on_event`). The messages come back to the caller (a transport) to deliver. Contacts are
known to the stores and the logs by their keyed hash only.
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
from palabre.flow.model import Flow
from palabre.runtime import entrances
from palabre.runtime.entrances import Contact, Outcome
from palabre.runtime.messages import Event, Inbound, Reply
from palabre.runtime.speech import Speech
from palabre.runtime.world import EXPIRY_NOTICE_SECONDS, World
from palabre.stores.base import SessionStore
from palabre.stores.lease import Lease

if TYPE_CHECKING:
    from palabre.metrics import Metrics
    from palabre.stores.bundle import Stores

__all__ = ["EXPIRY_NOTICE_SECONDS", "Engine", "EventContext"]

log = logging.getLogger("palabre.engine")


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

    async def handle(self, inbound: Inbound) -> Reply:
        """Process one inbound message. Raises StoreError when the store fails."""
        key = self.contact_key(inbound.contact)
        async with self.store.locked(key) as lease:
            began = time.perf_counter()
            seen, session = await self.store.load(key, inbound.message_id)
            if seen:
                return _duplicate(key)
            outcome = await entrances.resume(self, session, inbound)
            await self._commit(key, outcome, lease, inbound.message_id, began)
        await self._publish(outcome, key, inbound.transport, inbound.message_id)
        return Reply(outcome.messages, outcome.events)

    async def start(
        self, contact: Contact, flow_id: str, params: Mapping[str, Any] | None = None
    ) -> Reply:
        """Begin `flow_id` for a contact who did not write; returns the messages to send."""
        key = self.contact_key(contact.address)
        async with self.store.locked(key) as lease:
            began = time.perf_counter()
            session = await self.store.get(key)
            outcome = await entrances.start(self, contact, flow_id, params, session)
            await self._commit(key, outcome, lease, None, began)
        await self._publish(outcome, key, contact.transport, None)
        return Reply(outcome.messages, outcome.events)

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


def _duplicate(key: str) -> Reply:
    log.info("duplicate message ignored", extra={"contact": key})
    return Reply(events=[Event("message_duplicated")])
