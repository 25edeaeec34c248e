"""WhatsApp's 24-hour window at send time (palabre.outbox.windows), through the real Meta
and Twilio transports to fakes built from their documented payloads: free text inside
the window, the step's template outside it (parameters rendered), and with no template
a local `window_closed` failure with no provider call. SMS has no window."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from tests.db_fixtures import Clock, open_database, url
from tests.meta_fakes import ALICE, ALICE_AT, FakeGraph
from tests.test_outbox import outbox_settings
from tests.twilio_fakes import FakeTwilio
from tests.twilio_fakes import settings_for as twilio_settings

import palabre_twilio
from palabre import builtins
from palabre.api.delivery import EventDesk
from palabre.api.requests import read_event
from palabre.api.starter import EventStarter
from palabre.bootstrap import build_engine
from palabre.db import migrate
from palabre.db.database import Database
from palabre.outbox.windows import Seen
from palabre.outbox.worker import Worker
from palabre.plugins import make_plugin_manager
from palabre.runtime.entrances import Contact
from palabre.runtime.messages import Inbound
from palabre.stores.bundle import Stores
from palabre.transports import Host
from palabre_meta_cloud import MetaCloudTransport
from palabre_twilio import TwilioTransport

pytestmark = pytest.mark.anyio
__all__ = ["url"]  # the fixture, shared in tests/db_fixtures.py

SECRET = b"window-test-secret-" + b"0" * 32
FLOW = """\
id: ticket
settings: {locales: [fr], default_locale: fr}
triggers: {event: ticket.called, fr: [ticket]}
steps:
  called:
    kind: say
    text: "Ticket {{ event.data.ticket }} : c'est votre tour."
    template:
      meta:
        name: ticket_called
        language: fr
        components:
          - type: body
            parameters: [{type: text, text: "{{ event.data.ticket }}"}]
      twilio:
        content_sid: HX0123456789abcdef0123456789abcdef
        variables: {"1": "{{ event.data.ticket }}"}
"""
PLAIN = """\
id: plain_notice
settings: {locales: [fr], default_locale: fr}
steps:
  only: {kind: end, text: "Sans modèle."}
"""
EVENT = {"event": {"name": "ticket.called", "id": "e1", "data": {"ticket": "A42"}}}


async def world(
    tmp_path: Path, settings, transport, http: httpx.AsyncClient, clock: Clock, **more: str
):
    """An engine on the flows above (and `more`: file stem -> YAML), its stores, and a
    worker sending through `transport`."""
    flows = tmp_path / "flows"
    flows.mkdir(exist_ok=True)
    for stem, text in {"ticket": FLOW, "plain": PLAIN, **more}.items():
        (flows / f"{stem}.yaml").write_text(text, encoding="utf-8")
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/palabre.db")
    await migrate.upgrade(database)
    stores = Stores.on(database, SECRET, clock)
    plugins = make_plugin_manager([builtins, palabre_twilio], entry_points=False)
    engine = build_engine([flows], settings, plugins=plugins, stores=stores, clock=clock)
    host = Host(engine, settings, http, transports={transport.name: transport})
    await transport.startup(host)
    return engine, Worker(host, stores.outbox, poll=0.01)


async def notify(engine, address: str, transport: str, channel: str) -> None:
    contact = Contact(address, transport, channel, "fr")
    await engine.start(contact, "ticket", key="e1", variables=EVENT)


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def meta_world(tmp_path: Path, clock: Clock):
    graph = FakeGraph()
    settings = outbox_settings(tmp_path, graph.url)
    http = httpx.AsyncClient(transport=graph.asgi(), base_url=graph.url)
    engine, worker = await world(tmp_path, settings, MetaCloudTransport(), http, clock)
    return graph, engine, worker, http


async def twilio_world(tmp_path: Path, clock: Clock, **more: str):
    """The fake Twilio, and an engine and worker sending through it (`more`: flows)."""
    fake = FakeTwilio()
    settings = twilio_settings(tmp_path, TWILIO_API_BASE=fake.url)
    http = fake.client()
    engine, worker = await world(tmp_path, settings, TwilioTransport(), http, clock, **more)
    return fake, engine, worker, http


async def test_inside_the_window_the_text_goes(tmp_path, clock):
    graph, engine, worker, http = await meta_world(tmp_path, clock)
    try:
        inbound = Inbound(ALICE_AT, "bonjour", channel="whatsapp", transport="meta_cloud",
                          message_id="wamid.IN1")  # fmt: skip
        await engine.handle(inbound)  # opens the window
        clock.now += 23 * 3600
        await notify(engine, ALICE_AT, "meta_cloud", "whatsapp")
        await worker.drain()
    finally:
        await engine.aclose()
        await http.aclose()
    last = graph.bodies(ALICE)[-1]
    assert last["type"] == "text" and "Ticket A42" in last["text"]["body"]


async def test_outside_the_window_the_declared_template_goes_with_its_parameters(tmp_path, clock):
    graph, engine, worker, http = await meta_world(tmp_path, clock)
    try:
        inbound = Inbound(ALICE_AT, "bonjour", channel="whatsapp", transport="meta_cloud",
                          message_id="wamid.IN1")  # fmt: skip
        await engine.handle(inbound)
        await worker.drain()
        clock.now += 25 * 3600  # the window closed an hour ago
        await notify(engine, ALICE_AT, "meta_cloud", "whatsapp")
        await worker.drain()
    finally:
        await engine.aclose()
        await http.aclose()
    template = graph.bodies(ALICE)[-1]
    assert template["type"] == "template", template
    assert template["template"]["name"] == "ticket_called"
    assert template["template"]["language"] == {"code": "fr"}
    (body,) = template["template"]["components"]
    assert body["parameters"] == [{"type": "text", "text": "A42"}]


async def test_outside_the_window_without_a_template_nothing_reaches_the_provider(tmp_path, clock):
    graph, engine, worker, http = await meta_world(tmp_path, clock)
    try:
        contact = Contact(ALICE_AT, "meta_cloud", "whatsapp", "fr")
        await engine.start(contact, "plain_notice", key="p1")  # Alice never wrote
        await worker.drain()
        (row,) = await engine.stores.outbox.rows(10)
    finally:
        await engine.aclose()
        await http.aclose()
    assert (row.status, row.error_code) == ("failed", "window_closed")
    assert "24-hour window" in (row.last_error or "")
    assert graph.bodies(ALICE) == [], "no provider call"


async def test_twilio_sends_the_content_template_and_sms_has_no_window(tmp_path, clock):
    fake, engine, worker, http = await twilio_world(tmp_path, clock)
    try:
        await notify(engine, "whatsapp:+243810000001", "twilio", "whatsapp")
        await engine.start(Contact("tel:+243810000002", "twilio", "sms", "fr"), "ticket",
                           key="e2", variables=EVENT)  # fmt: skip
        await worker.drain()
        # The fake answers each request in order, with one sid each.
        sent_to = [r["form"]["To"] for r in fake.requests]
        sid = fake.sids[sent_to.index("whatsapp:+243810000001")]
        logged = await engine.stores.messages.get(sid)
    finally:
        await engine.aclose()
        await http.aclose()
    by_to = {r["form"]["To"]: r["form"] for r in fake.requests}
    whatsapp = by_to["whatsapp:+243810000001"]
    assert whatsapp["ContentSid"] == "HX0123456789abcdef0123456789abcdef"
    assert json.loads(whatsapp["ContentVariables"]) == {"1": "A42"}
    assert "Body" not in whatsapp, "a template is sent without a Body"
    assert logged, "the template's sid is in the message log, for its status callbacks"
    assert by_to["+243810000002"]["Body"].startswith("Ticket A42"), "SMS: the text, always"


async def test_a_notification_past_its_ttl_expires_and_is_never_sent(tmp_path, clock):
    graph, engine, worker, http = await meta_world(tmp_path, clock)
    try:
        desk, starter = EventDesk(engine), EventStarter(engine)
        for event_id in ("late", "later"):
            body = {"event": "ticket.called", "id": event_id, "to": ALICE_AT, "ttl": 300,
                    "data": {"ticket": "A42"}}  # fmt: skip
            await desk.take("queue", read_event(body, None, lambda _: True))
        await starter.start_now("queue", "late")  # started in time, its message not sent
        clock.now += 301  # the workers were down for five minutes
        await starter.start_now("queue", "later")  # too late to start at all
        await worker.drain()
        (row,) = await engine.stores.outbox.rows(10)
        late, later = [await desk.queue.status("queue", n) for n in ("late", "later")]
    finally:
        await engine.aclose()
        await http.aclose()
    assert late and later and later.status == "expired" and later.messages == []
    assert row.uid == late.messages[0]["id"] and row.kind == "event"
    assert row.status == "expired", "a late 'your turn' is never sent"
    assert graph.bodies(ALICE) == []


async def test_a_late_redelivery_never_moves_the_window_back(url, clock):
    database = open_database(url)
    await migrate.upgrade(database)
    outbox = Stores.on(database, SECRET, clock).outbox
    try:
        await outbox.enqueue([], seen=Seen("contact-1", "meta_cloud"))
        opened = clock.now
        clock.now -= 3600  # a worker whose clock lags an hour
        await outbox.enqueue([], seen=Seen("contact-1", "meta_cloud"))
        assert await outbox.last_inbound("contact-1", "meta_cloud") == opened
        clock.now = opened + 60  # the contact writes again
        await outbox.enqueue([], seen=Seen("contact-1", "meta_cloud"))
        assert await outbox.last_inbound("contact-1", "meta_cloud") == opened + 60
        assert await outbox.last_inbound("contact-1", "twilio") is None, "per business number"
    finally:
        await database.aclose()


async def test_the_window_counts_from_when_the_contact_wrote_not_when_it_came(tmp_path, clock):
    graph, engine, worker, http = await meta_world(tmp_path, clock)
    key = engine.contact_key(ALICE_AT)
    try:
        wrote = clock.now - 23.5 * 3600  # Meta delivered the webhook 23.5 hours late
        late = Inbound(ALICE_AT, "bonjour", channel="whatsapp", transport="meta_cloud",
                       message_id="wamid.LATE", sent_at=wrote)  # fmt: skip
        await engine.handle(late)
        counted_from = await engine.stores.outbox.last_inbound(key, "meta_cloud")
        clock.now += 3600  # 24.5 hours after they wrote: shut, though 1 hour after it came
        await notify(engine, ALICE_AT, "meta_cloud", "whatsapp")
        await worker.drain()
        ahead = Inbound(ALICE_AT, "merci", channel="whatsapp", transport="meta_cloud",
                        message_id="wamid.AHEAD", sent_at=clock.now + 600)  # fmt: skip
        await engine.handle(ahead)  # a provider clock ten minutes ahead of ours
        capped = await engine.stores.outbox.last_inbound(key, "meta_cloud")
    finally:
        await engine.aclose()
        await http.aclose()
    assert counted_from == wrote
    assert graph.bodies(ALICE)[-1]["type"] == "template", "outside the window: the template"
    assert capped == clock.now, "never later than now: the window is not stretched"


async def test_writing_to_one_business_number_opens_no_window_on_another(tmp_path, clock):
    graph, engine, worker, http = await meta_world(tmp_path, clock)
    try:
        to_twilio = Inbound(ALICE_AT, "bonjour", channel="whatsapp", transport="twilio",
                            message_id="SM.IN1")  # fmt: skip
        await engine.handle(to_twilio, inline=True)  # to the Twilio number, answered in TwiML
        await notify(engine, ALICE_AT, "meta_cloud", "whatsapp")
        await worker.drain()
    finally:
        await engine.aclose()
        await http.aclose()
    assert graph.bodies(ALICE)[-1]["type"] == "template", "the Meta number's window is shut"


SCHOOL_NOTICE = Path(__file__).parent.parent.joinpath("flows", "school_notice.yaml").read_text()
NOTICE = {"child": "Amina", "class": "4e B", "date": "12 mars",
          "message": "La sortie est reportée.\n\nPrévoir un pique-nique."}  # fmt: skip
ONE_LINE = "La sortie est reportée. Prévoir un pique-nique."


async def test_a_school_notice_outside_the_window_goes_as_its_template_on_one_line(tmp_path, clock):
    graph = FakeGraph()
    http = httpx.AsyncClient(transport=graph.asgi(), base_url=graph.url)
    settings = outbox_settings(tmp_path, graph.url)
    engine, worker = await world(
        tmp_path, settings, MetaCloudTransport(), http, clock, school_notice=SCHOOL_NOTICE
    )
    try:
        parent = Contact(ALICE_AT, "meta_cloud", "whatsapp", "ar")  # who never wrote
        await engine.start(parent, "school_notice", NOTICE, key="notice-1")
        await worker.drain()
    finally:
        await engine.aclose()
        await http.aclose()
    (template,) = graph.bodies(ALICE)
    assert template["type"] == "template", template
    assert template["template"]["name"] == "school_notice"
    assert template["template"]["language"] == {"code": "ar"}
    (body,) = template["template"]["components"]
    assert [p["text"] for p in body["parameters"]] == ["Amina", "4e B", "12 mars", ONE_LINE]


async def test_a_school_notice_through_twilio_has_its_language_s_content_and_one_line_variables(
    tmp_path, clock
):
    fake, engine, worker, http = await twilio_world(tmp_path, clock, school_notice=SCHOOL_NOTICE)
    try:
        parent = Contact("whatsapp:+243810000001", "twilio", "whatsapp", "en")
        await engine.start(parent, "school_notice", NOTICE, key="notice-1")
        await worker.drain()
    finally:
        await engine.aclose()
        await http.aclose()
    (sent,) = [request["form"] for request in fake.requests]
    assert sent["ContentSid"] == "HX00000000000000000000000000000c03", "the English one"
    variables = json.loads(sent["ContentVariables"])
    assert variables == {"1": "Amina", "2": "4e B", "3": "12 mars", "4": ONE_LINE}


ONLY_FRENCH = """\
id: only_french
settings: {locales: [fr, en], default_locale: fr}
steps:
  only:
    kind: end
    text: "Bonjour"
    template: {twilio: {content_sid: {fr: HX0000000000000000000000000000f001}, variables: {}}}
"""


async def test_a_language_without_its_own_content_sid_gets_the_default_language_s(tmp_path, clock):
    fake, engine, worker, http = await twilio_world(tmp_path, clock, only_french=ONLY_FRENCH)
    try:
        english = Contact("whatsapp:+243810000001", "twilio", "whatsapp", "en")
        await engine.start(english, "only_french", key="n1")
        await worker.drain()
    finally:
        await engine.aclose()
        await http.aclose()
    (sent,) = [request["form"] for request in fake.requests]
    assert sent["ContentSid"] == "HX0000000000000000000000000000f001", "French: the default"
