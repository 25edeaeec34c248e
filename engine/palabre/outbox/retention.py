"""How long the outbox keeps what it holds: bodies briefly, the log of sends for longer.

    PALABRE_OUTBOX_KEEP_BODIES  hours a settled row keeps its address and text (72: as
                                long as a processed message id is remembered, so a
                                redelivered message can still get its replies again)
    PALABRE_OUTBOX_KEEP_ROWS    days a settled row is kept at all (90), for
                                `palabre messages`: status, attempts, error, provider id

A row is settled once no worker will touch it again: sent or further, failed,
unconfirmed, expired. Rows still queued or being sent are never purged. A held row
(its turn never committed, and its message never came back) is deleted once it is older
than the bodies' time. The purge runs in `palabre serve` (and `palabre worker`) every
ten minutes; on several machines each one runs it, which is harmless. A broadcast's lines
not started after the bodies' time end `expired` and lose their address and parameters;
a broadcast goes with its rows. The events API forgets the events it took with the rows
they made (never one still waiting for its flows): an event id sent again after that is
a new event.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from palabre.api.queue import EventQueue
from palabre.broadcasts.store import BroadcastStore
from palabre.config import Settings
from palabre.config_checks import finite_number, shown
from palabre.outbox.store import Outbox
from palabre.transports import Host

log = logging.getLogger("palabre.outbox")

BODIES, ROWS = "PALABRE_OUTBOX_KEEP_BODIES", "PALABRE_OUTBOX_KEEP_ROWS"
HOUR, DAY = 3600.0, 86400.0
PURGE_EVERY = 600.0  # seconds


@dataclass(frozen=True)
class Retention:
    """Seconds a settled row keeps its body, and seconds it is kept at all."""

    bodies: float = 72 * HOUR
    rows: float = 90 * DAY

    @classmethod
    def from_settings(cls, settings: Settings) -> Retention:
        """The retention the settings give (malformed values keep the defaults: see problems)."""
        default = cls()
        hours = _positive(settings.option(BODIES))
        days = _positive(settings.option(ROWS))
        return cls(
            hours * HOUR if hours else default.bodies,
            days * DAY if days else default.rows,
        )


async def purge(outbox: Outbox, retention: Retention) -> None:
    """Forget what the retention no longer allows (in the outbox and in broadcasts'
    audiences); logs the counts, never a body."""
    now = outbox.clock()
    bodies, rows = now - retention.bodies, now - max(retention.rows, retention.bodies)
    purged = await outbox.purge(bodies, rows)
    purged |= await BroadcastStore(outbox.database, outbox.clock).purge(bodies, rows)
    purged["api_events"] = await EventQueue(outbox.database, outbox.clock).forget(rows)
    if any(purged.values()):
        log.info("outbox purged", extra=purged)


async def purge_outbox(host: Host) -> None:
    """The `register_workers` job: purge the outbox every ten minutes."""
    retention = Retention.from_settings(host.settings)
    while True:
        await purge(host.stores.outbox, retention)
        await asyncio.sleep(PURGE_EVERY)


def problems(settings: Settings) -> list[str]:
    """One line per malformed retention setting."""
    found = []
    for name, unit in ((BODIES, "hours, such as 72"), (ROWS, "days, such as 90")):
        raw = settings.option(name)
        if raw and _positive(raw) is None:
            found.append(f"{name}={shown(raw)} must be a positive number of {unit}")
    return found


def _positive(raw: str | None) -> float | None:
    number = finite_number(raw) if raw else None
    return number if number is not None and number > 0 else None
