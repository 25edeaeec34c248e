"""The background job that completes registrations queued while DHIS-2 was down.

`palabre serve` runs `retry_registrations` for its whole life (`register_workers`). Each
round imports the due registrations; the client UIDs make a repeated import harmless
(E1002 "already exists" counts as done, and so does E1064: someone else has the code).
A failed attempt waits longer each time (30 s, 1 min, 2 min... at most an hour).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from palabre.transports import Host
from palabre_dhis2.client import Dhis2Client
from palabre_dhis2.config import Dhis2Config
from palabre_dhis2.errors import Dhis2Rejected, Dhis2Unavailable
from palabre_dhis2.queue import RegistrationQueue
from palabre_dhis2.tracker import submit

log = logging.getLogger("palabre.dhis2")

Backoff = Callable[[int], float]


def doubling_backoff(attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failures: 30 s, doubling, 1 h at most."""
    return float(min(3600, 30 * 2 ** min(attempts, 10)))


async def drain(
    queue: RegistrationQueue, client: Dhis2Client, backoff: Backoff = doubling_backoff
) -> int:
    """Try each due registration once; returns how many DHIS-2 now holds."""
    completed = 0
    for item in await queue.due():
        uid = item.registration.tracked_entity
        try:
            outcome = await submit(client, item.registration)
        except Dhis2Unavailable:
            await queue.postpone(uid, backoff(item.attempts), "unavailable")
            log.warning("DHIS-2 still unavailable; registration kept", extra={"id": uid})
            break  # the rest would fail the same way: wait for the next round
        except Dhis2Rejected as exc:
            await queue.postpone(uid, backoff(item.attempts), f"rejected: HTTP {exc.status}")
            log.error("DHIS-2 rejected a queued registration: %s", exc, extra={"id": uid})
            continue
        await queue.done(uid)
        completed += 1
        log.info("queued registration completed", extra={"id": uid, "outcome": outcome})
    return completed


async def retry_registrations(
    host: Host, *, interval: float = 15.0, backoff: Backoff = doubling_backoff
) -> None:
    """Drain the queue every `interval` seconds until cancelled (nothing to do unconfigured)."""
    config = Dhis2Config.from_settings(host.settings)
    if not config.configured:
        return
    queue = RegistrationQueue(host.stores.tasks)
    client = Dhis2Client(config, host.http)
    while True:
        await drain(queue, client, backoff)
        await asyncio.sleep(interval)
