"""The UIC flow with DHIS-2 Tracker: one entity per code, the returning path, and outages."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from tests.dhis2_fakes import PROGRAM, client_for, fake, settings_for

from palabre.bootstrap import build_engine
from palabre.config import Settings
from palabre.runtime.messages import Inbound
from palabre.stores.bundle import open_stores
from palabre_dhis2.queue import RegistrationQueue
from palabre_dhis2.worker import drain

ROOT = Path(__file__).parent.parent
ANSWERS = ["Bonjour", "Mbengue", "Ibrahima", "1997", "DA", "1"]
__all__ = ["fake"]  # the fake DHIS-2 fixture, served on loopback


def uic_flow(tmp_path: Path) -> Path:
    """flows/uic.yaml with the fake DHIS-2's metadata UIDs in its settings."""
    text = (ROOT / "flows" / "uic.yaml").read_text(encoding="utf-8")
    for key, placeholder in (
        ("program", "uicPrgrm001"),
        ("attribute", "uicAttrb001"),
        ("org_unit", "uicOrgUn001"),
        ("tracked_entity_type", "uicTeType01"),
    ):
        text = text.replace(placeholder, PROGRAM[key])
    path = tmp_path / "uic.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def engine_for(fake, tmp_path: Path, data: str = "data"):
    settings = settings_for(fake.url, tmp_path)
    settings.data_dir = tmp_path / data
    settings.secrets["PALABRE_SECRET"] = "uic-dhis2-test"
    settings.locales_dir = ROOT / "locales"
    return build_engine([uic_flow(tmp_path)], settings)


def converse(engine, contact: str) -> str:
    async def run() -> str:
        last = ""
        for i, text in enumerate(ANSWERS):
            reply = await engine.handle(Inbound(contact, text, message_id=f"{contact}-{i}"))
            last = reply.messages[-1].text if reply.messages else last
        await engine.aclose()
        return last

    return asyncio.run(run())


def test_a_new_person_is_registered_exactly_once(fake, tmp_path):
    last = converse(engine_for(fake, tmp_path), "+243810000001")
    assert last.startswith("Votre Code d'Identification Unique est MBEIBR7DA1.")
    assert len(fake.entities) == 1
    (entity,) = fake.entities.values()
    assert entity.attributes == {PROGRAM["attribute"]: "MBEIBR7DA1"}
    assert entity.programs == {PROGRAM["program"]}
    assert len(fake.seen("POST", "/api/tracker")) == 1


def test_a_second_person_with_the_same_code_is_already_registered(fake, tmp_path):
    converse(engine_for(fake, tmp_path), "+243810000001")
    last = converse(engine_for(fake, tmp_path), "+243820000002")
    assert "MBEIBR7DA1 existe déjà" in last
    assert len(fake.entities) == 1


def test_a_code_already_in_dhis2_takes_the_returning_path_on_a_new_deployment(fake, tmp_path):
    fake.seed("MBEIBR7DA1")
    last = converse(engine_for(fake, tmp_path, data="fresh"), "+243810000003")
    assert "MBEIBR7DA1 existe déjà" in last
    assert len(fake.entities) == 1
    assert fake.seen("POST", "/api/tracker") == []


def test_with_dhis2_down_the_person_gets_the_code_and_it_is_registered_later(fake, tmp_path):
    fake.down = True
    last = converse(engine_for(fake, tmp_path), "+243810000004")
    assert "MBEIBR7DA1" in last
    assert "Votre enregistrement sera finalisé sous peu." in last
    assert fake.entities == {}

    fake.down = False

    async def retry() -> int:
        stores = open_stores(Settings(data_dir=tmp_path / "data"))  # the engine's database
        try:
            async with httpx.AsyncClient() as http:
                return await drain(RegistrationQueue(stores.tasks), client_for(fake, http))
        finally:
            await stores.aclose()

    assert asyncio.run(retry()) == 1
    assert [e.attributes[PROGRAM["attribute"]] for e in fake.entities.values()] == ["MBEIBR7DA1"]


@pytest.mark.parametrize("version", ["2.40", "2.42"])
def test_the_flow_works_with_both_tracker_api_generations(fake, tmp_path, version):
    fake.version = version
    settings_version = {"2.40": "2.40", "2.42": "2.42"}[version]
    engine = engine_for(fake, tmp_path)
    engine.settings.options["DHIS2_VERSION"] = settings_version
    last = converse(engine, "+243810000005")
    assert "MBEIBR7DA1" in last
    assert len(fake.entities) == 1
