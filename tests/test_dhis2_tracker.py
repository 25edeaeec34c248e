"""The tracker calls: both page shapes, both import report shapes, and importing.

The fake DHIS-2 and the helpers these tests share are in `tests/dhis2_fakes.py`.
"""

from __future__ import annotations

import httpx
import pytest
from tests.dhis2_fakes import CODE, client_for, fake, program

from palabre_dhis2.registration import Registration
from palabre_dhis2.tracker import entity_ids, read_import_report, submit

__all__ = ["fake"]  # fixtures from tests/dhis2_fakes.py


def test_both_page_shapes_and_both_report_shapes_are_read():
    assert entity_ids({"page": 1, "instances": [{"trackedEntity": "Kj6vYde4LHh"}]}) == [
        "Kj6vYde4LHh"
    ]
    assert entity_ids({"pager": {}, "trackedEntities": [{"trackedEntity": "Gjaiu3ea38E"}]}) == [
        "Gjaiu3ea38E"
    ]
    bare = {"status": "ERROR", "validationReport": {"errorReports": [{"errorCode": "E1064"}]}}
    wrapped = {"httpStatusCode": 409, "status": "ERROR", "response": bare}
    assert read_import_report(bare) == read_import_report(wrapped)
    assert read_import_report(wrapped).error_codes == ("E1064",)


@pytest.mark.anyio
async def test_an_import_rejected_as_non_unique_or_already_there_is_read(fake):
    async with httpx.AsyncClient() as http:
        client = client_for(fake, http)
        taken = Registration.new(CODE, program())
        fake.seed(CODE)
        assert await submit(client, taken) == "exists", "E1064: someone else has the code"
        mine = Registration.new("OTHERCODE1", program())
        assert await submit(client, mine) == "created"
        assert await submit(client, mine) == "created", "E1002: the retry finds its first attempt"
    assert len(fake.entities) == 2
    assert fake.requests[-1].method == "POST" and len(fake.seen("POST", "/api/tracker")) == 3
