"""The DHIS-2 client's retries: 4xx never, 5xx and timeouts with backoff.

The fake DHIS-2 and the helpers these tests share are in `tests/dhis2_fakes.py`.
"""

from __future__ import annotations

import pytest
from tests.dhis2_fakes import CODE, context_for, fake, settings_for

from palabre.errors import ActionError
from palabre_dhis2 import find, register

__all__ = ["fake"]  # fixtures from tests/dhis2_fakes.py


@pytest.mark.anyio
async def test_client_errors_are_not_retried_and_reach_on_error(fake, tmp_path):
    fake.fail_next = [403]
    with pytest.raises(ActionError) as caught:
        await register.register({"value": CODE}, context_for(settings_for(fake.url, tmp_path)))
    assert "HTTP 403" in str(caught.value) and "credentials" in str(caught.value)
    assert caught.value.user_message == "The health registry could not record this request."
    assert len(fake.requests) == 1
    assert fake.entities == {}


@pytest.mark.anyio
async def test_a_wrong_token_is_refused_once(fake, tmp_path):
    settings = settings_for(fake.url, tmp_path)
    settings.secrets["DHIS2_TOKEN"] = "wrong"
    with pytest.raises(ActionError, match="HTTP 401"):
        await find.find({"value": CODE}, context_for(settings))
    assert len(fake.requests) == 1


@pytest.mark.anyio
async def test_server_errors_are_retried_with_backoff(fake, tmp_path):
    fake.fail_next = [503, 502]
    result = await register.register({"value": CODE}, context_for(settings_for(fake.url, tmp_path)))
    assert result["status"] == "created"
    assert len(fake.seen("GET", "/api/tracker/trackedEntities")) == 3
    assert len(fake.entities) == 1


@pytest.mark.anyio
async def test_timeouts_are_retried(fake, tmp_path):
    fake.slow_next, fake.slow_seconds = 1, 1.0
    settings = settings_for(fake.url, tmp_path, DHIS2_TIMEOUT="0.2")
    result = await find.find({"value": CODE}, context_for(settings))
    assert result["found"] is False
    assert len(fake.seen("GET", "/api/tracker/trackedEntities")) == 2
