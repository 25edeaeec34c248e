"""A step's `ttl`: a message not sent in time is `expired`, never sent late.

The worker expires a queued row past its time without calling the provider; a row it
sends to Twilio carries what is left of its ttl as `ValidityPeriod`, and Twilio's error
30036 (still in its queue when that ran out) makes the row and the message log `expired`.
The event's own `ttl` is tested with the 24-hour window (tests/test_whatsapp_window.py).
"""

from __future__ import annotations

import pytest
from starlette.datastructures import ImmutableMultiDict
from tests.db_fixtures import Clock
from tests.test_whatsapp_window import world
from tests.twilio_fakes import FakeTwilio, status
from tests.twilio_fakes import settings_for as twilio_settings

from palabre.errors import FlowError
from palabre.flow.loader import load_flow
from palabre.runtime.entrances import Contact
from palabre_twilio import TwilioTransport
from palabre_twilio.rest import validity_period
from palabre_twilio.status import read_status, record_status

pytestmark = pytest.mark.anyio
SOON = """\
id: soon
settings: {locales: [fr], default_locale: fr}
triggers: {event: ticket.soon}
steps:
  soon:
    kind: say
    text: "Ticket {{ event.data.ticket }} : votre tour dans 5 minutes."
    ttl: 5m
  thanks:
    kind: end
    text: "Merci d'avoir patienté."
"""
EVENT = {"event": {"name": "ticket.soon", "id": "e1", "data": {"ticket": "A42"}}}
PHONE = "tel:+243810000002"


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def twilio_world(tmp_path, clock):
    fake = FakeTwilio()
    settings = twilio_settings(tmp_path, TWILIO_API_BASE=fake.url)
    http = fake.client()
    engine, worker = await world(tmp_path, settings, TwilioTransport(), http, clock, soon=SOON)
    return fake, engine, worker, http


async def notify(engine) -> None:
    contact = Contact(PHONE, "twilio", "sms", "fr")
    await engine.start(contact, "soon", key="e1", variables=EVENT)


async def test_a_step_past_its_ttl_expires_unsent_and_the_next_message_still_goes(tmp_path, clock):
    fake, engine, worker, http = await twilio_world(tmp_path, clock)
    try:
        await notify(engine)
        clock.now += 301  # the workers were down for five minutes
        await worker.drain()
        rows = sorted(await engine.stores.outbox.rows(10), key=lambda row: row.id)
    finally:
        await engine.aclose()
        await http.aclose()
    assert [row.status for row in rows] == ["expired", "sent"]
    bodies = [request["form"]["Body"] for request in fake.requests]
    assert bodies == ["Merci d'avoir patienté."], "the late notice is never sent"
    assert "ValidityPeriod" not in fake.requests[0]["form"], "a message with no ttl has none"


async def test_twilio_gets_what_is_left_of_the_ttl_and_its_30036_means_expired(tmp_path, clock):
    fake, engine, worker, http = await twilio_world(tmp_path, clock)
    try:
        await notify(engine)
        clock.now += 60  # sent a minute late: four minutes left
        await worker.drain()
        notice = fake.requests[0]["form"]
        host = worker.host
        callback = status(fake.sids[0], "failed", to=PHONE.removeprefix("tel:"), ErrorCode="30036")
        await record_status(host, read_status(ImmutableMultiDict(callback)))
        logged = await engine.stores.messages.get(fake.sids[0])
        rows = sorted(await engine.stores.outbox.rows(10), key=lambda row: row.id)
    finally:
        await engine.aclose()
        await http.aclose()
    assert notice["Body"].startswith("Ticket A42") and notice["ValidityPeriod"] == "240"
    assert logged.status == "expired" and logged.error_code == "30036"
    assert rows[0].status == "expired", "Twilio dropped it unsent: the outbox says so"


def test_twilios_validity_period_stays_within_what_it_accepts():
    assert validity_period(None, 100.0) is None
    assert validity_period(100.5, 100.0) == "1", "at least one second"
    assert validity_period(50.0, 100.0) == "1", "already late: Twilio drops it at once"
    assert validity_period(100.0 + 86_400, 100.0) == "36000", "Twilio's most: 10 hours"


def test_a_ttl_that_is_no_duration_is_refused_at_its_line(tmp_path):
    path = tmp_path / "soon.yaml"
    path.write_text(SOON.replace("ttl: 5m", "ttl: soon"), encoding="utf-8")
    with pytest.raises(FlowError) as refused:
        load_flow(path)
    (problem,) = refused.value.problems
    assert str(problem).startswith(f"{path}:8:10: steps.soon.ttl: 'soon' is not a duration")
