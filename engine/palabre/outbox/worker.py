"""The outbox worker: claims due rows and sends them through their transport.

One loop per process (`palabre serve` runs it in-process, `palabre worker` alone), with
up to `concurrency` sends in flight, never two of one contact (see claims). For each
claimed row: take its slot in the sender's and the recipient's budgets and wait for it,
and for room in the sender's window, in-process (when the slot is further off, the row
goes back to the queue, attempts unchanged); check the contact's consent for the row's
purpose (palabre.stores.consent: without it the row ends `skipped`, `no_consent`, and no
provider is called); commit that the send starts; take the room (see limits); call
`host.transport_for(channel).send(...)`; record the outcome (see policy). The waits
come before the marker: a worker that dies while it waits leaves its
row queued again by the lease, not unconfirmed. Only a short one may follow it, when
another send took the room during the commit.

The loop wakes on `Outbox.wake()` (rows this process queued), when a send ends (its
contact's next row is due), and otherwise every `poll` seconds (rows of other processes,
retries coming due, lapsed claims).

Cancelled, it stops claiming, gives back the rows whose send had not started, lets the
sends in flight finish for a few seconds, and leaves what remains to the lease.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field, replace

from palabre.outbox.answers import Answers, watch_answers, watched
from palabre.outbox.claims import Claimed, Claims
from palabre.outbox.limits import RateLimits, Slot
from palabre.outbox.policy import Outcome, RetryPolicy, outcome_of
from palabre.outbox.statuses import FAILED, QUEUED, SENDING, SKIPPED
from palabre.outbox.store import Outbox
from palabre.outbox.windows import WINDOW_CLOSED, is_open
from palabre.runtime.messages import Outbound
from palabre.stores.consent import channel_of
from palabre.transports import Delivery, Host, Transport
from palabre.waits import woken

log = logging.getLogger("palabre.outbox")

POLL_SECONDS = 0.5
REAP_EVERY = 1.0  # seconds between looks for lapsed claims
MAX_LIMITER_WAIT = 1.5  # longer than this, a throttled row goes back to the queue
STOP_GRACE = 5.0  # seconds a stopping worker lets its sends in flight finish
NO_CONSENT = "no_consent"


@dataclass
class Flight:
    """One claimed row in this worker, and whether its transport was called."""

    row: Claimed
    calling: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Worker:
    """Drains the outbox through the host's transports."""

    def __init__(
        self,
        host: Host,
        box: Outbox,
        *,
        policy: RetryPolicy | None = None,
        limits: RateLimits | None = None,
        concurrency: int = 32,
        poll: float = POLL_SECONDS,
    ) -> None:
        self.host, self.box = host, box
        self.policy = policy or RetryPolicy.from_settings(host.settings)
        self.limits = limits or RateLimits(host.settings)
        watch_answers(host.http)
        self.concurrency, self.poll = concurrency, poll
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.claims = Claims(box, self.id, self.policy.lease)
        self.metrics = host.engine.metrics  # the web app's, under `palabre serve`
        self._flights: dict[str, Flight] = {}
        self._next_reap = 0.0

    async def run(self) -> None:
        """Send until cancelled."""
        try:
            while True:
                await self._reap_if_due()
                claimed = await self._claim()
                if len(claimed) == 0 or len(self._flights) >= self.concurrency:
                    await self._idle()
        finally:
            await asyncio.shield(self._stop())

    async def drain(self) -> None:
        """Send until no row is queued or being sent, retries included (for tests and
        benchmarks: it waits for rows other workers hold, and for backoffs)."""
        while True:
            await self._reap_if_due()
            claimed = await self._claim()
            if claimed:
                continue
            if not self._flights:
                depth = await self.box.depth()
                if not depth.get(QUEUED) and not depth.get(SENDING):
                    return
            await self._idle()

    async def _claim(self) -> list[Claimed]:
        free = self.concurrency - len(self._flights)
        channels = self.host.channels()
        self.box.wakeup.clear()  # looked: a send that ends, or a row queued, sets it again
        if free <= 0 or not channels or (self._flights and free < self.concurrency // 4):
            return []  # claim in batches: a quarter of the slots at least, or when idle
        rows = await self.claims.claim(free, channels)
        for row in rows:
            flight = Flight(row)
            self._flights[row.uid] = flight
            flight.task = asyncio.create_task(self._deliver(flight))
        return rows

    async def _idle(self) -> None:
        await woken(self.box.wakeup, self.poll)

    async def _reap_if_due(self) -> None:
        now = self.box.clock()
        if now >= self._next_reap:
            self._next_reap = now + REAP_EVERY
            reaped = await self.claims.reap()
            if reaped:
                log.warning("lapsed claims re-examined", extra={"rows": reaped})

    async def _deliver(self, flight: Flight) -> None:
        row = flight.row
        try:
            transport = self.host.transport_for(row.channel)
            slot = await self._budget(transport, row)
            if slot is None:
                return
            message = row.outbound()  # the row's JSON, read once for every check below
            if not await self._consented(row, message):  # checked last, right before the send
                await self._skip(row)
                return
            leaving = await self._in_window(row, message)
            if leaving is None:
                return
            delivery = await self._start_and_send(flight, transport, slot, leaving)
            if delivery is None:
                return
            outcome = outcome_of(delivery, row.attempts, self.policy, self.box.clock())
            await self.claims.record(row, outcome)
            _log(row, outcome.status, delivery)
            self._count(row, outcome, delivery)
        except Exception as exc:  # the store failed: the lease decides later
            log.error("outbox send not recorded: %s", type(exc).__name__, extra={"uid": row.uid})
        finally:
            self._flights.pop(row.uid, None)
            self.box.wakeup.set()  # this contact's next row may be due now

    async def _consented(self, row: Claimed, message: Outbound) -> bool:
        channel = channel_of(row.address, message.channel)
        return await self.host.stores.consent.allows(row.contact_key, channel, row.purpose)

    async def _skip(self, row: Claimed) -> None:
        """The contact has not given the consent the row needs: it never reaches a provider."""
        reason = f"the contact has not given {row.purpose} consent on this channel"
        outcome = Outcome(SKIPPED, row.attempts, error_code=NO_CONSENT, reason=reason)
        await self.claims.record(row, outcome)
        log.info("outbox message skipped", extra={"uid": row.uid, "error_code": NO_CONSENT})

    async def _budget(self, transport: Transport, row: Claimed) -> Slot | None:
        """Take the row's slot in its budgets, and wait for it and for room in the sender's
        window; give the row back (attempts unchanged) when the slot is too far off."""
        sender = _sender(transport, row.address)
        slot = await self.limits.reserve(
            row.channel, sender, row.address, row.contact_key, within=MAX_LIMITER_WAIT
        )
        if not slot.taken:
            await self.claims.release([row], until=slot.at)
            return None
        while (wait := await self.limits.admit(slot, take=False)) > 0:
            await asyncio.sleep(wait)
        return slot

    async def _in_window(self, row: Claimed, message: Outbound) -> Outbound | None:
        """The message as it may leave: its text inside WhatsApp's 24-hour window, its
        template outside; None when it may not (recorded `window_closed`, see windows)."""
        if channel_of(row.address, message.channel) != "whatsapp":
            return message
        if is_open(row.last_inbound_at, self.box.clock()):  # read with the claim
            return message
        if message.template:
            return replace(message, as_template=True)
        reason = "outside WhatsApp's 24-hour window, and its step declares no template"
        outcome = Outcome(FAILED, row.attempts, error_code=WINDOW_CLOSED, reason=reason)
        await self.claims.record(row, outcome)
        log.warning("outbox message not sent", extra={"uid": row.uid, "error_code": WINDOW_CLOSED})
        return None

    async def _start_and_send(
        self, flight: Flight, transport: Transport, slot: Slot, message: Outbound
    ) -> Delivery | None:
        """Commit that the send starts, take the room in the sender's window, then send;
        None when the claim was lost meanwhile. The room is taken last, right before the
        request, because it is held until the answer: whatever comes in between holds
        it longer (another send may have taken the room meanwhile: then a short wait)."""
        if not await self.claims.start(flight.row):
            return None  # the lease lapsed while we waited: another worker decides
        answers = Answers(self.limits.clock)
        try:
            while (wait := await self.limits.admit(slot)) > 0:
                await asyncio.sleep(wait)
            flight.calling = True
            with watched(answers):
                return await self._send(transport, message)
        finally:
            try:
                await self.limits.done(slot, answers.last())
            except Exception as exc:  # the window forgets the send after limits.HELD
                log.warning("rate limit window not updated: %s", type(exc).__name__)

    async def _send(self, transport: Transport, message: Outbound) -> Delivery:
        try:
            return await transport.send(message)
        except Exception as exc:  # a transport bug: the request may have gone out
            detail = f"the transport raised {type(exc).__name__}"
            return Delivery(
                None, "failed", error_code="transport_error", unconfirmed=True, detail=detail
            )

    def _count(self, row: Claimed, outcome: Outcome, delivery: Delivery) -> None:
        if self.metrics is None:
            return
        if row.attempts:  # an earlier attempt failed retryably (throttling uses up none)
            self.metrics.retried(row.channel)
        self.metrics.sent(row.channel, _send_outcome(outcome, delivery))

    async def _stop(self) -> None:
        waiting = [f for f in self._flights.values() if not f.calling and f.task]
        for flight in waiting:
            assert flight.task is not None
            flight.task.cancel()
        await self.claims.release([f.row for f in waiting])
        calling = [f.task for f in self._flights.values() if f.calling and f.task]
        if calling:
            await asyncio.wait(calling, timeout=STOP_GRACE)


def _sender(transport: Transport, address: str) -> str:
    """Who sends to `address` on this transport (its number), when the transport says."""
    sender_for = getattr(transport, "sender_for", None)
    return str(sender_for(address) or "") if callable(sender_for) else ""


def _send_outcome(outcome: Outcome, delivery: Delivery) -> str:
    """The metrics' outcome of one send: sent, failed, unconfirmed, throttled or retried."""
    if outcome.status != QUEUED:
        return outcome.status
    return "throttled" if delivery.throttled else "retried"


def _log(row: Claimed, status: str, delivery: Delivery) -> None:
    fields = {
        "uid": row.uid,
        "channel": row.channel,
        "contact": row.contact_key,
        "status": status,
        "provider_id": delivery.provider_id,
        "error_code": delivery.error_code,
    }
    level = logging.INFO if delivery.provider_id or delivery.throttled else logging.WARNING
    log.log(level, "outbox message %s", status, extra=fields)


async def run_worker(host: Host) -> None:
    """The `register_workers` job: the outbox worker of this process."""
    await Worker(host, host.stores.outbox).run()
