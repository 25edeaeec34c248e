"""Before a broadcast starts: whom it reaches, what it costs, how fast it may go.

`plan_broadcast` takes a read audience, skips the lines without the consent the
broadcast needs (`no_consent`, read from the ledger now; the worker reads it again
before each send), dry-runs the flow for the rest (palabre.broadcasts.preview), and
works out the senders' rate caps: the time the broadcast takes, the ETA, and how far
ahead of them the outbox is fed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from palabre.addresses import read_address
from palabre.broadcasts.audience import NO_CONSENT, Audience, Recipient
from palabre.broadcasts.preview import Estimate, estimate
from palabre.broadcasts.sending import ahead_for, consented
from palabre.broadcasts.store import Broadcast, BroadcastStore
from palabre.broadcasts.store import Progress as Counts
from palabre.config import Settings
from palabre.errors import ConfigError
from palabre.outbox.limits import per_second, sender_rate, setting_name
from palabre.purposes import BROADCAST, SERVICE
from palabre.runtime.engine import Engine
from palabre.starts import default_transport
from palabre.stores.consent import channel_of


@dataclass
class Plan:
    """A broadcast worked out: its audience, cost, and pace."""

    audience: Audience
    estimate: Estimate
    transport_of: Callable[[Recipient], str]
    per_second: float | None  # the senders' caps together; None: no cap
    rate: str  # the cap, as the settings name it
    expected: int  # messages the broadcast sends
    counts: Counts = field(default_factory=Counts)  # lines by skip reason
    warnings: list[str] = field(default_factory=list)  # said before the question

    @property
    def notes(self) -> list[str]:
        """The lines a person should fix, `contacts.csv:12: invalid: ...`."""
        return self.audience.notes

    @property
    def seconds(self) -> float | None:
        """How long the sending takes at the cap."""
        return self.expected / self.per_second if self.per_second else None

    @property
    def ahead(self) -> int:
        """How many of its messages may wait in the outbox."""
        return ahead_for(self.per_second)

    @classmethod
    def for_resume(
        cls, settings: Settings, broadcast: Broadcast, counts: Counts, sample: Recipient | None
    ) -> Plan:
        """The pace of a broadcast already started (its cost was told then); `sample`, a
        line still waiting, shows its sender (None: all started, nothing to pace)."""
        transport_of = transports(settings, broadcast.transport)
        senders = {(transport_of(sample), sample.address)} if sample else set()
        cap, rate = _cap(settings, senders)
        expected = counts.waiting + sum(counts.messages.values())
        return cls(Audience([], []), Estimate(), transport_of, cap, rate, expected, counts)


def transports(settings: Settings, chosen: str) -> Callable[[Recipient], str]:
    """The transport of each line: `chosen`, else by its address (palabre start's rule)."""

    def transport_of(recipient: Recipient) -> str:
        return chosen or default_transport(read_address(recipient.address), settings)

    return transport_of


async def plan_broadcast(
    engine: Engine,
    settings: Settings,
    flow_id: str,
    params: dict[str, str],
    audience: Audience,
    args: argparse.Namespace,
) -> Plan:
    """Consent, a dry run and the pace, for a new broadcast of `flow_id` to `audience`."""
    await _skip_without_consent(engine, audience.sendable, args.purpose)
    warnings = await _stopped_but_reached(engine, audience.sendable, args.purpose)
    transport_of = transports(settings, args.transport or "")
    found = await estimate(engine, flow_id, params, audience.recipients, transport_of)
    senders = {(transport_of(r), r.address) for r in audience.sendable}
    cap, rate = _cap(settings, senders)
    counts = Counts(lines=len(audience.recipients))
    for recipient in audience.recipients:
        if recipient.skip is not None:
            counts.skipped[recipient.skip] = counts.skipped.get(recipient.skip, 0) + 1
    expected = found.messages + found.unknown  # at least one message each
    return Plan(audience, found, transport_of, cap, rate, expected, counts, warnings)


@asynccontextmanager
async def prepared(
    flows: str, settings: Settings, *, engine_needed: bool = True
) -> AsyncIterator[tuple[Any, BroadcastStore]]:
    """The engine (when needed) and the broadcasts' store, on a database whose schema is
    checked; closed after."""
    from palabre.bootstrap import build_engine
    from palabre.plugins import make_plugin_manager

    if engine_needed:
        engine = build_engine([flows], settings)
        stores = engine.stores
    else:
        engine, stores = (
            None,
            make_plugin_manager().hook.make_stores(settings=settings, clock=time.time),
        )
    if stores is None:
        raise ConfigError("a broadcast needs the durable stores (the outbox)")
    try:
        created = await stores.open()
        if created:
            print(created, file=sys.stderr)
        yield engine, BroadcastStore(stores.database)
    finally:
        await (engine.aclose() if engine is not None else stores.aclose())


async def _skip_without_consent(engine: Engine, lines: list[Recipient], purpose: str) -> None:
    assert engine.stores is not None
    allowed = await consented(engine.stores.consent, lines, purpose)
    for recipient in lines:
        if recipient.contact_key not in allowed:
            recipient.skip = NO_CONSENT
            recipient.detail = f"no {purpose} consent on {channel_of(recipient.address)}"


async def _stopped_but_reached(engine: Engine, lines: list[Recipient], purpose: str) -> list[str]:
    """A `service` broadcast reaches those who said STOP to announcements: say how many."""
    if purpose != SERVICE:
        return []
    assert engine.stores is not None
    stopped = 0
    for channel, group in _by_channel(lines).items():
        keys = [r.contact_key for r in group if r.contact_key is not None]
        latest = await engine.stores.consent.latest_among(keys, channel, BROADCAST)
        stopped += sum(1 for granted in latest.values() if not granted)
    if not stopped:
        return []
    return [
        f"Warning: {stopped} of the recipients said STOP to announcements. A service message "
        "still reaches them: send only what they must receive (a closure, an exam)."
    ]


def _by_channel(lines: list[Recipient]) -> dict[str, list[Recipient]]:
    by_channel: dict[str, list[Recipient]] = {}
    for recipient in lines:
        by_channel.setdefault(channel_of(recipient.address), []).append(recipient)
    return by_channel


def _cap(settings: Settings, senders: set[tuple[str, str]]) -> tuple[float | None, str]:
    """The senders' rate caps added up (each sender has its own), and how they are named."""
    total, names = 0.0, []
    kinds = {(transport, address.split(":", 1)[0]): address for transport, address in senders}
    for (transport, _), address in sorted(kinds.items()):
        rate = sender_rate(settings, transport, address)
        if rate is None:
            return None, f"no rate limit ({setting_name(transport)} is not set)"
        total += per_second(rate)
        every = f"{rate.multiples} {rate.GRANULARITY.name}s" if rate.multiples > 1 else ""
        names.append(f"{rate.amount}/{every or rate.GRANULARITY.name} ({transport})")
    return (total or None), ", ".join(names) or "no sender"
