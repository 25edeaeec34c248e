"""Replies sent after the webhook answered, in the order the engine produced them.

The webhook reserves a place for a turn's replies right after the engine committed it
(synchronously, so places follow commit order), and delivers them in a background task
once Meta has its 200. A turn waits for the previous turn of the same contact, so two
webhooks arriving together still get their replies in order. A rate-limited message is
retried after a pause; other failures are logged and the next message goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from palabre.runtime.messages import Outbound
from palabre.transports import Delivery

log = logging.getLogger("palabre.meta_cloud")

RETRY_DELAYS = (2.0, 8.0)  # seconds before the 2nd and 3rd tries of a rate-limited message
WAIT_FOR_PREVIOUS = 60.0  # never let a lost turn block a contact for good


@dataclass
class Place:
    """One turn's replies and its place in its contact's queue."""

    contact: str
    messages: list[Outbound]
    previous: asyncio.Future[None] | None
    done: asyncio.Future[None]


class Outbox:
    """Per-contact ordered delivery of replies through `send`."""

    def __init__(
        self,
        send: Callable[[Outbound], Awaitable[Delivery]],
        retry_delays: Sequence[float] = RETRY_DELAYS,
    ) -> None:
        self._send = send
        self.retry_delays = tuple(retry_delays)
        self._tails: dict[str, asyncio.Future[None]] = {}

    def reserve(self, contact: str, messages: list[Outbound]) -> Place:
        """Take the next place in `contact`'s queue; call with no await since the commit."""
        done = asyncio.get_running_loop().create_future()
        place = Place(contact, messages, self._tails.get(contact), done)
        self._tails[contact] = done
        return place

    async def deliver(self, places: list[Place]) -> None:
        """Send every place's messages, each after its contact's previous place."""
        try:
            for place in places:
                await self._deliver_one(place)
                self._release(place)
        finally:
            for place in places:  # after a cancellation too: never block a later turn
                self._release(place)

    async def _deliver_one(self, place: Place) -> None:
        await self._wait_for_previous(place)
        for message in place.messages:
            try:
                await self._send_with_retries(message)
            except Exception as exc:  # one broken send must not stop the others
                log.error("sending a reply failed: %s", type(exc).__name__)

    async def _wait_for_previous(self, place: Place) -> None:
        if place.previous is None or place.previous.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(place.previous), WAIT_FOR_PREVIOUS)
        except TimeoutError:
            log.warning("previous replies still pending: sending anyway")

    async def _send_with_retries(self, message: Outbound) -> Delivery:
        return await with_retries(lambda: self._send(message), self.retry_delays)

    def _release(self, place: Place) -> None:
        if not place.done.done():
            place.done.set_result(None)
        if self._tails.get(place.contact) is place.done:
            del self._tails[place.contact]


async def with_retries(
    attempt: Callable[[], Awaitable[Delivery]], delays: Sequence[float]
) -> Delivery:
    """Try, and try again after each delay while the failure is retryable."""
    delivery = await attempt()
    for delay in delays:
        if not delivery.retryable:
            break
        await asyncio.sleep(delay)
        delivery = await attempt()
    return delivery
