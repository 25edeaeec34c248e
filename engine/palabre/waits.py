"""Waiting for an `asyncio.Event` with a time limit, in a loop that must stop when its task
is cancelled (a worker's job on SIGTERM).

`asyncio.wait_for(event.wait(), seconds)` cannot serve on Python 3.11: when the event is
set just before the task is cancelled, it returns as if woken and the cancellation is lost
(CPython gh-86296, fixed in 3.12). A job's loop then waits again, forever, and `palabre
worker` never stops on SIGTERM. `asyncio.timeout` counts the task's cancellations and
never loses one.
"""

from __future__ import annotations

import asyncio
import contextlib


async def woken(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` pass; True when it was set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    return event.is_set()
