"""palabre.waits: a loop that waits for an event with a time limit stops when its task is
cancelled, even when the event is set just before (Python 3.11's `asyncio.wait_for` then
loses the cancellation, and `palabre worker` never stopped on SIGTERM)."""

from __future__ import annotations

import asyncio
import re

from tests.serving import ROOT

from palabre.waits import woken


async def a_job(event: asyncio.Event) -> None:
    """A worker's loop: wait to be woken, or poll."""
    while True:
        event.clear()
        await woken(event, 60)


def test_a_job_cancelled_as_it_is_woken_stops():
    async def run() -> bool:
        event = asyncio.Event()
        job = asyncio.create_task(a_job(event))
        await asyncio.sleep(0)  # the job waits
        event.set()
        await asyncio.sleep(0)  # its wait is over, and it has not run since
        job.cancel()  # SIGTERM
        done, _ = await asyncio.wait({job}, timeout=5)
        job.cancel()  # a job still running must not outlive the test
        await asyncio.gather(job, return_exceptions=True)
        return bool(done)

    assert asyncio.run(run()), "the cancellation was lost: the job waited again"


def test_woken_says_whether_the_event_was_set():
    async def run() -> tuple[bool, bool]:
        event = asyncio.Event()
        timed_out = await woken(event, 0)
        event.set()
        return timed_out, await woken(event, 60)

    assert asyncio.run(run()) == (False, True)


def test_no_code_waits_with_asyncio_wait_for():
    """Every timed wait goes through palabre.waits (see its docstring)."""
    sources = [*ROOT.glob("engine/**/*.py"), *ROOT.glob("plugins/**/*.py")]
    found = [str(path.relative_to(ROOT)) for path in sources
             if re.search(r"\bwait_for\(", path.read_text(encoding="utf-8"))
             and path.name != "waits.py"]  # fmt: skip
    assert found == [], f"use palabre.waits.woken in {found}"
