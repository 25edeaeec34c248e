"""`dhis2.find`: the query each DHIS-2 version expects, and a flow that looks a code up.

The fake DHIS-2 and the helpers these tests share are in `tests/dhis2_fakes.py`.
"""

from __future__ import annotations

import base64

import httpx
import pytest
from tests.dhis2_fakes import (
    CODE,
    PASSWORD,
    PHONE,
    PROGRAM,
    TOKEN,
    USER,
    context_for,
    fake,
    settings_for,
)

from palabre.bootstrap import build_engine
from palabre.errors import ActionError
from palabre.runtime.messages import Inbound
from palabre_dhis2 import find

__all__ = ["fake"]  # fixtures from tests/dhis2_fakes.py


@pytest.mark.anyio
async def test_find_on_2_41_sends_org_units_and_reads_tracked_entities_with_a_pager(fake, tmp_path):
    uid = fake.seed("AB+C1")
    async with httpx.AsyncClient() as http:
        result = await find.find(
            {"value": "AB+C1"}, context_for(settings_for(fake.url, tmp_path), http)
        )
    assert result == {"found": True, "count": 1, "ids": [uid]}
    (request,) = fake.seen("GET", "/api/tracker/trackedEntities")
    assert "filter=lZGmxYbs97q%3AEQ%3AAB%2BC1" in request.query, "a + must travel as %2B"
    assert request.params == [
        ("filter", "lZGmxYbs97q:EQ:AB+C1"),
        ("program", "IpHINAT79UW"),
        ("fields", "trackedEntity"),
        ("orgUnits", "DiszpKrYNg8"),
        ("orgUnitMode", "DESCENDANTS"),
    ]
    assert request.authorization == f"ApiToken {TOKEN}"


@pytest.mark.anyio
async def test_find_on_2_40_sends_org_unit_and_ou_mode_and_reads_instances(fake, tmp_path):
    fake.version = "2.40"
    settings = settings_for(fake.url, tmp_path, "2.40", DHIS2_USERNAME=USER)
    result = await find.find({"value": CODE}, context_for(settings))
    assert result == {"found": False, "count": 0, "ids": []}
    (request,) = fake.seen("GET", "/api/tracker/trackedEntities")
    assert ("orgUnit", "DiszpKrYNg8") in request.params
    assert ("ouMode", "DESCENDANTS") in request.params
    assert not {"orgUnits", "orgUnitMode"} & {name for name, _ in request.params}
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert request.authorization == f"Basic {basic}"


@pytest.mark.anyio
async def test_a_2_40_setting_against_a_2_42_server_fails_clearly_without_retrying(fake, tmp_path):
    fake.version = "2.42"
    with pytest.raises(ActionError) as caught:
        await find.find({"value": CODE}, context_for(settings_for(fake.url, tmp_path, "2.40")))
    assert "HTTP 400" in str(caught.value)
    assert caught.value.user_message
    assert len(fake.requests) == 1, "a 4xx is never retried"


# -- end to end: a flow looks a code up through the engine ---------------------------


LOOKUP_FLOW = f"""\
id: lookup
settings:
  locales: [en]
  default_locale: en
  dhis2: {{program: {PROGRAM["program"]}, attribute: {PROGRAM["attribute"]}, org_unit: {PROGRAM["org_unit"]}, tracked_entity_type: {PROGRAM["tracked_entity_type"]}, org_unit_mode: ACCESSIBLE}}
steps:
  ask_code: {{kind: ask, text: "Which code?", save_as: code}}
  lookup: {{kind: action, action: dhis2.find, with: {{value: "{{{{ code }}}}"}}, save_as: found, on_error: down}}
  route: {{kind: branch, cases: [{{when: "found.found", next: known}}], else: unknown}}
  known: {{kind: end, text: "Known ({{{{ found.count }}}})."}}
  unknown: {{kind: end, text: "Unknown."}}
  down: {{kind: end, text: "Try later."}}
"""


@pytest.mark.anyio
async def test_a_flow_looks_a_code_up_with_dhis2_find(fake, tmp_path):
    flow = tmp_path / "lookup.yaml"
    flow.write_text(LOOKUP_FLOW)
    settings = settings_for(fake.url, tmp_path)
    engine = build_engine([flow], settings)  # actions get these settings as settings_env
    fake.seed(CODE)
    try:
        await engine.handle(Inbound(PHONE, "hello"))
        reply = await engine.handle(Inbound(PHONE, CODE))
        assert [m.text for m in reply.messages] == ["Known (1)."]
        fake.down = True
        await engine.handle(Inbound(PHONE, "hello"))
        reply = await engine.handle(Inbound(PHONE, CODE))
        texts = [m.text for m in reply.messages]
        assert texts == ["The health registry cannot be reached right now.", "Try later."]
    finally:
        await engine.aclose()
    params = fake.seen("GET", "/api/tracker/trackedEntities")[0].params
    assert ("orgUnitMode", "ACCESSIBLE") in params
    assert "orgUnits" not in dict(params), "ACCESSIBLE takes no org units"
