"""`dhis2.register`: one enrolled entity per code, client UIDs, and a flow that registers.

The fake DHIS-2 and the helpers these tests share are in `tests/dhis2_fakes.py`.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from tests.dhis2_fakes import (
    CODE,
    PHONE,
    PROGRAM,
    TOKEN,
    context_for,
    fake,
    program,
    queue_in,
    settings_for,
)

from palabre.bootstrap import build_engine
from palabre.config import Settings
from palabre.runtime.messages import Inbound
from palabre.stores.bundle import open_stores
from palabre_dhis2 import register
from palabre_dhis2.registration import Registration
from palabre_dhis2.uid import is_uid

__all__ = ["fake"]  # fixtures from tests/dhis2_fakes.py


@pytest.mark.anyio
async def test_register_creates_one_enrolled_entity_with_a_client_uid(fake, tmp_path):
    result = await register.register({"value": CODE}, context_for(settings_for(fake.url, tmp_path)))
    (post,) = fake.seen("POST", "/api/tracker")
    assert post.params == [("async", "false"), ("importStrategy", "CREATE"), ("atomicMode", "ALL")]
    te = post.body["trackedEntities"][0]
    (enrollment,) = te.pop("enrollments")
    assert te == {
        "trackedEntity": result["id"],
        "trackedEntityType": "nEenWmSyUEp",
        "orgUnit": "DiszpKrYNg8",
        "attributes": [{"attribute": "lZGmxYbs97q", "value": CODE}],
    }
    assert is_uid(enrollment.pop("enrollment"))
    assert enrollment.pop("enrolledAt") == enrollment.pop("occurredAt")
    assert enrollment == {"program": "IpHINAT79UW", "orgUnit": "DiszpKrYNg8", "status": "ACTIVE"}
    assert result == {"status": "created", "id": te["trackedEntity"]}
    (entity,) = fake.entities.values()
    assert entity.attributes == {"lZGmxYbs97q": CODE} and entity.programs == {"IpHINAT79UW"}


@pytest.mark.anyio
async def test_registering_the_same_code_twice_says_exists_and_creates_nothing(fake, tmp_path):
    context = context_for(settings_for(fake.url, tmp_path))
    first = await register.register({"value": CODE}, context)
    again = await register.register({"value": CODE}, context)
    assert again == {"status": "exists", "id": first["id"]}
    assert len(fake.entities) == 1
    assert len(fake.seen("POST", "/api/tracker")) == 1


@pytest.mark.anyio
async def test_a_retried_turn_finds_the_entity_it_created_itself(fake, tmp_path):
    """The same turn (idempotency key) registering again after a crash: its own UIDs, so the
    entity it created counts as created; another turn sees the code as existing."""
    settings = settings_for(fake.url, tmp_path)
    turn = replace(context_for(settings), idempotency_key="m1:uic:register")
    first = await register.register({"value": CODE}, turn)
    retried = await register.register({"value": CODE}, turn)
    other = await register.register({"value": CODE}, replace(turn, idempotency_key="m2:uic:x"))
    assert first == retried == {"status": "created", "id": first["id"]}
    assert other == {"status": "exists", "id": first["id"]}
    assert len(fake.entities) == 1 and len(fake.seen("POST", "/api/tracker")) == 1
    assert Registration.new(CODE, program(), seed="m1:uic:register") == Registration.new(
        CODE, program(), seed="m1:uic:register"
    )
    assert is_uid(Registration.new(CODE, program(), seed="m1").tracked_entity)


@pytest.mark.anyio
async def test_register_is_skipped_when_dhis2_is_not_configured(tmp_path):
    settings = Settings(data_dir=tmp_path)
    assert await register.register({"value": CODE}, context_for(settings)) == {"status": "skipped"}


# -- end to end: a flow registers through the engine ---------------------------


REGISTRATION_FLOW = f"""\
id: reg
settings:
  locales: [en]
  default_locale: en
  dhis2: {{program: {PROGRAM["program"]}, attribute: {PROGRAM["attribute"]}, org_unit: {PROGRAM["org_unit"]}, tracked_entity_type: {PROGRAM["tracked_entity_type"]}}}
steps:
  ask_code:
    kind: ask
    text: "What is your code?"
    save_as: code
  register:
    kind: action
    action: dhis2.register
    with: {{value: "{{{{ code }}}}"}}
    save_as: reg
    on_error: failed
  route:
    kind: branch
    cases:
      - {{when: "reg.status == 'exists'", next: known}}
      - {{when: "reg.status == 'queued'", next: later}}
  created:
    kind: end
    text: "Your code {{{{ code }}}} is registered."
  known:
    kind: end
    text: "Your code {{{{ code }}}} was already registered."
  later:
    kind: end
    text: "Your code is {{{{ code }}}}. Your registration will complete soon."
  failed:
    kind: end
    text: "Your code is {{{{ code }}}}."
"""


@pytest.mark.anyio
async def test_a_flow_registers_codes_through_the_engine(fake, tmp_path, monkeypatch, caplog):
    flow = tmp_path / "reg.yaml"
    flow.write_text(REGISTRATION_FLOW)
    data = tmp_path / "data"
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "DHIS2_URL": fake.url,
        "DHIS2_TOKEN": TOKEN,
        "DHIS2_VERSION": "2.41",
        "DHIS2_RETRY_DELAYS": "0.01",
        "PALABRE_DATA_DIR": str(data),
        "PALABRE_SECRET": "dhis2-test-secret-" + "0" * 32,
    }.items():
        monkeypatch.setenv(name, value)
    caplog.set_level("DEBUG", logger="palabre")
    engine = build_engine([flow], Settings.from_env())  # the one configuration door
    try:

        async def say(contact: str, *texts: str) -> str:
            for text in texts:
                reply = await engine.handle(Inbound(contact, text))
            return reply.messages[-1].text

        assert await say(PHONE, "hello") == "What is your code?"
        assert await say(PHONE, CODE) == f"Your code {CODE} is registered."
        assert (
            await say("+243810000002", "hello", CODE) == f"Your code {CODE} was already registered."
        )
        fake.down = True
        later = await say("+243810000003", "hello", "NEWCODE001")
        assert later == "Your code is NEWCODE001. Your registration will complete soon."
    finally:
        await engine.aclose()
    assert len(fake.entities) == 1
    waiting = open_stores(Settings(data_dir=data))
    try:
        assert await queue_in(waiting).count() == 1
    finally:
        await waiting.aclose()
    for secret in (CODE, "NEWCODE001", PHONE, TOKEN):
        assert secret not in caplog.text, "logs carry ids and statuses only"
