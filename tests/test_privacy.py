"""A contact's data, exported then erased (palabre.privacy), on SQLite and PostgreSQL with
sessions in Redis: afterwards no phone number, answer or message text of theirs is left
in the database, in Redis or in the logs, and their next message starts afresh."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select
from tests.db_fixtures import open_database, url

from palabre.api.delivery import EventDesk
from palabre.api.requests import read_event
from palabre.bootstrap import build_engine
from palabre.config import Settings
from palabre.db import migrate
from palabre.db.schema import metadata
from palabre.privacy import erase_contact, export_contact
from palabre.runtime.messages import Inbound

__all__ = ["url"]  # the fixture, shared in tests/db_fixtures.py

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).parent.parent
PHONE = "whatsapp:+243810000081"
OTHER = "whatsapp:+243810000082"
SECRET = "privacy-test-secret-" + "0" * 32
# What must not outlive the erasure: the number, the answers, a text only they were sent
# (the other contact, who answered once, was never asked the year).
TRACES = ("243810000081", "Mbengue", "MBE", "Ibrahima", "IBR", "En quelle année")


def settings_for(tmp_path: Path, database_url: str, redis_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        redis_url=redis_url,
        secrets={"PALABRE_SECRET": SECRET},
    )


async def converse(engine, phone: str, texts: list[str], prefix: str) -> None:
    for n, text in enumerate(texts):
        inbound = Inbound(phone, text, channel="whatsapp", transport="meta_cloud")
        await engine.handle(
            Inbound(**{**vars(inbound), "message_id": f"{prefix}{n}"})  # distinct ids
        )


async def everything_in_the_database(database_url: str) -> str:
    database = open_database(database_url)
    try:

        def dump(conn) -> str:
            return repr([conn.execute(select(table)).all() for table in metadata.sorted_tables])

        return await database.run(dump)
    finally:
        await database.aclose()


async def everything_in_redis(redis_url: str) -> str:
    client = aioredis.Redis.from_url(redis_url)
    found = []
    try:
        async for key in client.scan_iter("*"):
            kind = (await client.type(key)).decode()
            if kind == "string":
                value = await client.get(key)
            elif kind == "list":
                value = await client.lrange(key, 0, -1)
            elif kind == "hash":
                value = await client.hgetall(key)
            else:
                value = kind
            found.append((key, value))
    finally:
        await client.aclose()
    return repr(found)


async def test_export_then_erase_leaves_nothing_of_the_contact(url, redis_url, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    database = open_database(url)
    await migrate.upgrade(database)
    await database.aclose()
    engine = build_engine([ROOT / "flows" / "uic.yaml"], settings_for(tmp_path, url, redis_url))
    try:
        await converse(engine, PHONE, ["Bonjour", "Mbengue", "Ibrahima"], "in")
        await converse(engine, OTHER, ["Bonjour", "Kabila"], "other")
        key = engine.contact_key(PHONE)
        await engine.stores.consent.record(key, "broadcast", True, "import", detail="school")
        event = {"event": "ticket.called", "id": "T-1", "to": PHONE, "data": {"name": "Mbengue"}}
        await EventDesk(engine).take("queue", read_event(event, None, lambda _: True))

        exported = await export_contact(engine, PHONE)
        assert exported["contact"]["address"] == PHONE
        assert exported["session"]["vars"]["last3"] == "MBE"
        texts = [row["payload"]["text"] for row in exported["messages"]]
        assert any("En quelle année" in text for text in texts), "the texts sent to them"
        assert [(e["purpose"], e["granted"]) for e in exported["consent"]] == [("broadcast", True)]
        (taken,) = exported["events"]
        assert taken["request"]["data"] == {"name": "Mbengue"}, "an event not yet started"
        assert json.dumps(exported, default=str), "the export is JSON"

        erased = await erase_contact(engine, PHONE)
        assert erased.session and erased.outbox_rows == len(exported["messages"])

        left = await everything_in_the_database(url) + await everything_in_redis(redis_url)
        left += caplog.text
        assert [trace for trace in TRACES if trace in left] == []
        assert "KAB" in left, "another contact's data is untouched"
        after = await export_contact(engine, PHONE)
        assert after["session"] is None and after["erased_at"] is not None
        assert [row["payload"] for row in after["messages"]] == [{}] * erased.outbox_rows
        (event_after,) = after["events"]
        assert (event_after["status"], event_after["request"]) == ("failed", {}), "never started"
        assert after["consent"][:-1] == exported["consent"], "the consent proof stays"
        last = after["consent"][-1]
        assert (last["purpose"], last["granted"], last["source"]) == ("broadcast", False, "agent")

        fresh = await engine.handle(
            Inbound(PHONE, "Bonjour", channel="whatsapp", transport="meta_cloud", message_id="x")
        )
        assert "1/5" in fresh.messages[-1].text, "a later message starts afresh"
    finally:
        await engine.aclose()


def test_the_commands_export_to_a_file_and_erase_only_with_yes(tmp_path):
    env = {"PALABRE_SECRET": SECRET, "PALABRE_DATA_DIR": str(tmp_path / "data"), "PATH": ""}

    def palabre(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "palabre.cli", *args, "--flows", str(ROOT / "flows")]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    output = tmp_path / "export.json"
    exported = palabre("contacts", "export", "+243 81 000 0091", "--output", str(output))
    assert exported.returncode == 0, exported.stderr
    assert json.loads(output.read_text())["contact"]["address"] == "tel:+243810000091"
    refused = palabre("contacts", "erase", "+243810000091")
    assert refused.returncode == 1 and "nothing erased" in refused.stderr
    erased = palabre("contacts", "erase", "+243810000091", "--yes")
    assert erased.returncode == 0, erased.stderr
    assert "erased contact" in erased.stdout and "243810000091" not in erased.stdout
