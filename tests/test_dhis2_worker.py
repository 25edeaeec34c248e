"""The worker that completes registrations queued while DHIS-2 was down.

The fake DHIS-2 and the helpers these tests share are in `tests/dhis2_fakes.py`.
"""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import httpx
import pytest
from tests.dhis2_fakes import (
    CODE,
    PHONE,
    PROGRAM,
    client_for,
    context_for,
    fake,
    program,
    queue_in,
    settings_for,
    stored_bytes,
    stores,
)

from palabre.bootstrap import build_engine
from palabre.config import Settings
from palabre.stores.bundle import Stores
from palabre.transports import Host
from palabre_dhis2 import register
from palabre_dhis2.program import ProgramSettings
from palabre_dhis2.registration import Registration
from palabre_dhis2.uid import generate_uid
from palabre_dhis2.worker import drain, retry_registrations

__all__ = ["fake", "stores"]  # fixtures from tests/dhis2_fakes.py


@pytest.mark.anyio
async def test_when_dhis2_is_down_the_registration_is_queued_then_completed(fake, tmp_path, stores):
    settings = settings_for(fake.url, tmp_path)
    fake.down = True
    result = await register.register({"value": CODE}, context_for(settings, stores=stores))
    assert result == {"status": "queued"}
    assert len(fake.requests) == 4, "one try and three retries, then queued"
    queue = queue_in(stores)
    assert await queue.count() == 1
    stored = stored_bytes(settings.data_dir)
    assert CODE.encode() in stored and PHONE.encode() not in stored

    async with httpx.AsyncClient() as http:
        host = _host(settings, http, tmp_path, stores)
        job = asyncio.create_task(retry_registrations(host, interval=0.05, backoff=lambda n: 0.0))
        await asyncio.sleep(0.2)
        assert await queue.count() == 1, "still down: kept"
        fake.down = False
        for _ in range(100):
            if await queue.count() == 0:
                break
            await asyncio.sleep(0.05)
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)
    assert await queue.count() == 0
    (entity,) = fake.entities.values()
    assert entity.attributes == {"lZGmxYbs97q": CODE}
    stored = stored_bytes(settings.data_dir)  # done() folded the WAL in: no checkpoint here
    assert CODE.encode() not in stored, "a completed registration leaves no code in the file"


@pytest.mark.anyio
async def test_the_worker_counts_an_import_that_already_went_through_as_done(fake, stores):
    queue = queue_in(stores)
    registration = Registration.new(CODE, program())
    await queue.add(registration)
    await queue.add(registration)  # adding the same UIDs twice keeps one row
    fake.seed(CODE, uid=registration.tracked_entity)  # committed, but the answer was lost
    async with httpx.AsyncClient() as http:
        assert await drain(queue, client_for(fake, http)) == 1
    assert await queue.count() == 0
    assert len(fake.entities) == 1


@pytest.mark.anyio
async def test_the_worker_keeps_a_rejected_registration_for_later(fake, stores):
    queue = queue_in(stores)
    bad = ProgramSettings(**{**PROGRAM, "tracked_entity_type": "not-a-uid"})
    registration = Registration(CODE, bad, "notAUid", generate_uid(), "2026-01-01T00:00:00.000")
    await queue.add(registration)
    async with httpx.AsyncClient() as http:
        assert await drain(queue, client_for(fake, http), backoff=lambda n: 60.0) == 0
    assert await queue.count() == 1
    assert await queue.due() == [], "postponed by the backoff"


def _host(settings: Settings, http: httpx.AsyncClient, tmp_path: Path, stores: Stores) -> Host:
    flow = tmp_path / "host.yaml"
    flow.write_text(
        textwrap.dedent("""\
        id: host
        settings: {locales: [en], default_locale: en}
        steps:
          bye: {kind: end, text: "bye"}
    """)
    )
    engine = build_engine([flow], settings, stores=stores)
    return Host(engine, settings, http)
