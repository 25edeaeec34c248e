"""The durable queue of registrations waiting for DHIS-2.

The fake DHIS-2 and the helpers these tests share are in `tests/dhis2_fakes.py`.
"""

from __future__ import annotations

import pytest
from tests.conftest import free_port
from tests.dhis2_fakes import (
    CODE,
    context_for,
    program,
    queue_in,
    settings_for,
    stored_bytes,
    stores,
)

from palabre.errors import ActionError
from palabre_dhis2 import register
from palabre_dhis2.registration import Registration

__all__ = ["stores"]  # fixtures from tests/dhis2_fakes.py


@pytest.mark.anyio
async def test_a_completed_registration_is_erased_from_the_queue_file(tmp_path, stores):
    queue = queue_in(stores)
    done, waiting = Registration.new(CODE, program()), Registration.new("KEPTCODE42", program())
    await queue.add(done)
    await queue.add(waiting)
    await queue.done(done.tracked_entity)
    stored = stored_bytes(tmp_path / "data")
    assert b"KEPTCODE42" in stored, "the waiting registration is still there"
    assert CODE.encode() not in stored, "the completed one is overwritten, not just unlinked"


@pytest.mark.anyio
async def test_a_refused_connection_queues_the_registration(tmp_path, stores):
    dead = f"http://127.0.0.1:{free_port()}"
    context = context_for(settings_for(dead, tmp_path), stores=stores)
    assert await register.register({"value": CODE}, context) == {"status": "queued"}
    assert await queue_in(stores).count() == 1


@pytest.mark.anyio
async def test_without_stores_a_registration_that_must_wait_reaches_on_error(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ActionError, match="the queue failed") as failed:
        await register.register({"value": CODE}, context_for(settings_for(dead, tmp_path)))
    assert failed.value.user_message == "The health registry cannot be reached right now."
