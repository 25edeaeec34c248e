"""The consent ledger (palabre.stores.consent) on both databases, and the outbox keeping to
it: a message without the consent it needs ends `skipped: no_consent`, unsent."""

from __future__ import annotations

import httpx
import pytest
from tests.db_fixtures import Clock, clock, open_database, stores, url
from tests.test_outbox import Graph, outbox_settings, queued, rig, sqlite_url

from palabre.db import migrate
from palabre.purposes import BROADCAST, SERVICE
from palabre.stores.bundle import Stores
from palabre.stores.consent import ConsentLedger, channel_of

__all__ = ["clock", "sqlite_url", "stores", "url"]  # fixtures, shared

pytestmark = pytest.mark.anyio


async def test_with_no_event_service_is_granted_and_broadcast_is_not(stores: Stores) -> None:
    consent = stores.consent
    assert await consent.allows("k1", "whatsapp", SERVICE)
    assert not await consent.allows("k1", "whatsapp", BROADCAST), "broadcasts need an opt-in"
    assert await consent.history("k1") == []


async def test_the_latest_event_decides_on_its_channel_or_on_every_channel(
    stores: Stores, clock: Clock
) -> None:
    consent = stores.consent
    await consent.record("k1", BROADCAST, True, "flow", detail="school_opt_in")
    assert await consent.allows("k1", "whatsapp", BROADCAST)
    assert await consent.allows("k1", "sms", BROADCAST), "granted on every channel"
    clock.now += 1
    await consent.record("k1", BROADCAST, False, "keyword", channel="sms", detail="stop")
    assert not await consent.allows("k1", "sms", BROADCAST), "withdrawn on SMS"
    assert await consent.allows("k1", "whatsapp", BROADCAST), "still granted on WhatsApp"
    assert await consent.allows("k1", "sms", SERVICE), "a broadcast STOP leaves service"
    assert not await consent.allows("k2", "whatsapp", BROADCAST), "another contact: untouched"
    history = await consent.history("k1")
    assert [(e.channel, e.granted, e.source, e.detail) for e in history] == [
        ("*", True, "flow", "school_opt_in"),
        ("sms", False, "keyword", "stop"),
    ]
    assert history[1].at == history[0].at + 1


async def test_an_event_recorded_again_under_its_key_is_kept_once(stores: Stores) -> None:
    consent = stores.consent
    assert await consent.record("k1", BROADCAST, False, "keyword", key="SM1:stop")
    assert not await consent.record("k1", BROADCAST, False, "keyword", key="SM1:stop")
    assert len(await consent.history("k1")) == 1
    assert await consent.withdrawn("k1", "whatsapp", BROADCAST)
    assert not await consent.withdrawn("k2", "whatsapp", BROADCAST), "never asked: not withdrawn"


async def test_an_event_recorded_by_one_worker_applies_on_another(url: str) -> None:
    first, second = open_database(url), open_database(url)
    await migrate.upgrade(first)
    try:
        await ConsentLedger(first).record("k1", SERVICE, False, "provider", detail="21610")
        assert not await ConsentLedger(second).allows("k1", "sms", SERVICE)
    finally:
        await first.aclose()
        await second.aclose()


async def test_unknown_purposes_and_sources_are_refused(stores: Stores) -> None:
    with pytest.raises(ValueError, match="unknown consent purpose 'marketing'"):
        await stores.consent.record("k1", "marketing", True, "api")
    with pytest.raises(ValueError, match="unknown consent source 'rumour'"):
        await stores.consent.record("k1", BROADCAST, True, "rumour")


def test_the_channel_comes_from_the_message_else_from_its_address() -> None:
    assert channel_of("whatsapp:+243810000001") == "whatsapp"
    assert channel_of("whatsapp-user:US.123") == "whatsapp"
    assert channel_of("+243810000001") == "sms"
    assert channel_of("+243810000001", "whatsapp") == "whatsapp"
    assert channel_of("terminal") == "*"


# -- the outbox keeps to it -------------------------------------------------------------------


async def test_a_broadcast_without_consent_is_skipped_and_never_sent(sqlite_url, tmp_path):
    graph = Graph()
    async with rig(sqlite_url, outbox_settings(tmp_path), httpx.ASGITransport(app=graph.app)) as r:
        consent = r.stores.consent
        await consent.record("contact-1", BROADCAST, True, "import")
        items = [queued(n, f"news{n}", "broadcast") for n in (1, 2)]
        items.append(queued(2, "your ticket", "start"))  # service: needs no opt-in
        uids = await r.stores.outbox.enqueue(items)
        await r.worker().drain()
        rows = [await r.stores.outbox.get(uid) for uid in uids]
    assert [(row.status, row.error_code) for row in rows] == [
        ("sent", None),
        ("skipped", "no_consent"),
        ("sent", None),
    ]
    assert graph.texts_to(1) == ["news1"]
    assert graph.texts_to(2) == ["your ticket"], "the provider never heard of the broadcast"


async def test_consent_withdrawn_after_queueing_is_checked_at_send_time(sqlite_url, tmp_path):
    graph = Graph()
    async with rig(sqlite_url, outbox_settings(tmp_path), httpx.ASGITransport(app=graph.app)) as r:
        consent = r.stores.consent
        await consent.record("contact-3", BROADCAST, True, "import", key="opt-in")
        [uid] = await r.stores.outbox.enqueue([queued(3, "late news", "broadcast")])
        await consent.record("contact-3", BROADCAST, False, "keyword", channel="whatsapp")
        await r.worker().drain()
        row = await r.stores.outbox.get(uid)
    assert (row.status, row.error_code) == ("skipped", "no_consent")
    assert graph.arrivals == []


async def test_opt_outs_recorded_before_the_ledger_become_withdrawals(url: str) -> None:
    from sqlalchemy import text

    database = open_database(url)
    try:
        await migrate.upgrade(database, "0004")
        insert = "INSERT INTO opt_outs (contact_key, reason, at) VALUES ('k9', '21610', 5.0)"
        async with database.connection() as conn:  # no schema check: it is behind
            await conn.execute(text(insert))
        await migrate.upgrade(database)
        consent = ConsentLedger(database)
        assert not await consent.allows("k9", "sms", SERVICE)
        assert not await consent.allows("k9", "whatsapp", BROADCAST)
        assert [(e.source, e.detail, e.at) for e in await consent.history("k9")] == [
            ("provider", "21610", 5.0),
            ("provider", "21610", 5.0),
        ]
    finally:
        await database.aclose()


# -- the `consent` step -------------------------------------------------------------------------

OPT_IN = """\
id: optin
settings: {locales: [en], default_locale: en}
steps:
  asked:
    kind: ask
    text: "May we send you the school's announcements?"
    choices: [{id: "yes", title: "Yes"}, {id: "no", title: "No"}]
    save_as: agrees
  recorded:
    kind: consent
    purpose: broadcast
    granted: agrees == "yes"
  thanks: {kind: end, text: "Noted."}
"""


def _opt_in_engine(tmp_path, text: str = OPT_IN):
    from palabre.bootstrap import build_engine
    from palabre.config import Settings

    flow = tmp_path / "optin.yaml"
    flow.write_text(text)
    secrets = {"PALABRE_SECRET": "consent-step-secret-" + "0" * 32}
    return build_engine([flow], Settings(data_dir=tmp_path / "data", secrets=secrets))


@pytest.mark.parametrize(("answer", "granted"), [("Yes", True), ("no", False)])
async def test_a_consent_step_records_the_answer_in_the_ledger_once(tmp_path, answer, granted):
    from palabre.runtime.messages import Inbound

    engine, phone = _opt_in_engine(tmp_path), "whatsapp:+243810000071"
    try:
        await engine.handle(Inbound(phone, "hello", channel="whatsapp", message_id="m1"))
        done = await engine.handle(Inbound(phone, answer, channel="whatsapp", message_id="m2"))
        await engine.handle(Inbound(phone, answer, channel="whatsapp", message_id="m2"))
        key = engine.contact_key(phone)
        history = await engine.stores.consent.history(key)
        assert ("consent_given" if granted else "consent_withdrawn") in done.event_names()
        assert [(e.purpose, e.granted, e.source, e.detail) for e in history] == [
            ("broadcast", granted, "flow", "optin")
        ], "recorded once, though the answer was delivered twice"
        assert await engine.stores.consent.allows(key, "whatsapp", BROADCAST) is granted
    finally:
        await engine.aclose()


async def test_a_consent_step_with_an_unknown_purpose_is_refused_at_its_line(tmp_path):
    from palabre.errors import FlowError

    with pytest.raises(FlowError) as refused:
        _opt_in_engine(tmp_path, OPT_IN.replace("purpose: broadcast", "purpose: broadcasts"))
    message = str(refused.value)
    assert "optin.yaml:11:14: steps.recorded.purpose: unknown consent purpose 'broadcasts'" in (
        message
    )
    assert "did you mean 'broadcast'?" in message


async def test_allowed_answers_for_many_contacts_what_allows_answers_for_each(
    stores: Stores,
) -> None:
    """`allowed` (a broadcast's audience at once) agrees with `allows` (one contact), over
    a bounded random history of grants and withdrawals on one channel or every channel."""
    import random

    rnd = random.Random(10)
    keys = [f"contact-{n}" for n in range(30)]
    for _ in range(150):
        await stores.consent.record(
            rnd.choice(keys),
            rnd.choice((BROADCAST, SERVICE)),
            rnd.random() < 0.5,
            "import",
            channel=rnd.choice(("sms", "whatsapp", "*")),
        )
    for channel in ("sms", "whatsapp"):
        for purpose in (BROADCAST, SERVICE):
            one_by_one = {k for k in keys if await stores.consent.allows(k, channel, purpose)}
            assert await stores.consent.allowed(keys, channel, purpose) == one_by_one
