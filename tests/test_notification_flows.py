"""The shipped notification flows, started by their events in French, Arabic and English:
queue tickets (seed 002: created, almost called, called) and fleet alerts to drivers
(seed 000). The snapshots in __snapshots__/test_notification_flows.ambr are what
customers and drivers read: review them like code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from palabre.render import as_plain_text
from palabre.sms import segment_count

FLOWS = Path(__file__).parent.parent / "flows"
CUSTOMER = "+243810000061"  # by SMS, the queue system's usual channel
DRIVER = "whatsapp:+243810000062"
LANGS = ["fr", "ar", "en"]

TICKETS: dict[str, dict[str, Any]] = {
    "fr": {
        "customer_name": "Aminata Diallo",
        "service_name": "Ouverture de compte",
        "queue_name": "Accueil",
        "agent_name": "M. Ndiaye",
    },
    "ar": {
        "customer_name": "أمينة ديالو",
        "service_name": "فتح حساب",
        "queue_name": "الاستقبال",
        "agent_name": "السيد نداي",
    },
    "en": {
        "customer_name": "Aminata Diallo",
        "service_name": "Account opening",
        "queue_name": "Front desk",
        "agent_name": "Mr Ndiaye",
    },
}
DRIVERS = {"fr": "Joseph Mukendi", "ar": "يوسف المكي", "en": "Joseph Mukendi"}
PLACES = {  # where a trip leaves from, and the garage
    "fr": {"trip": "Parc de Limete", "maintenance": "Garage central"},
    "ar": {"trip": "مستودع ليميتي", "maintenance": "المرأب المركزي"},
    "en": {"trip": "Limete depot", "maintenance": "Central garage"},
}
WHEN = "2026-03-12T07:30:00+01:00"
DAY = {"fr": "jeudi 12 mars", "ar": "الخميس 12 مارس", "en": "Thursday 12 March"}


def ticket(lang: str, name: str, **data: Any) -> dict[str, Any]:
    """The event the queue system posts for ticket A042."""
    fields = {"ticket_number": "A042", "eta_minutes": 12, "counter": "3", **TICKETS[lang]}
    return {"name": name, "id": f"A042-{name}", "data": {**fields, **data}}


def alert(lang: str, kind: str) -> dict[str, Any]:
    """The event the fleet system posts for vehicle 4521-AB-01."""
    data = {"driver_name": DRIVERS[lang], "plate": "4521-AB-01", "kind": kind, "when": WHEN}
    return {
        "name": "fleet.alert",
        "id": f"4521-{kind}",
        "data": {**data, "where": PLACES[lang][kind]},
    }


def first_message(transcript) -> str:
    """The first message as an SMS carries it (with its numbered choices)."""
    return as_plain_text(transcript.replies[0].messages[0])


def assert_fits_sms(text: str, lang: str, segments: int = 1) -> None:
    """At most `segments` SMS segments in French and English; Arabic (UCS-2, 70 characters
    a segment) may take one more."""
    most = segments + 1 if lang == "ar" else segments
    assert segment_count(text) <= most, f"{segment_count(text)} SMS segments: {text!r}"


@pytest.mark.parametrize("lang", LANGS)
def test_a_created_ticket_is_announced_with_its_queue_and_wait(palabre_bot, snapshot, lang):
    bot = palabre_bot(FLOWS / "queue_ticket_created.yaml")
    event = ticket(lang, "ticket.created")
    transcript = bot.start(
        "queue_ticket_created", lang=lang, contact=CUSTOMER, channel="sms", event=event
    )
    data = event["data"]
    for field in ("customer_name", "ticket_number", "service_name", "queue_name"):
        assert data[field] in transcript.last, f"the {field} is in the message"
    assert "12" in transcript.last, "the estimated wait is in the message"
    assert transcript.events[-1] == "flow_completed", "nothing is asked: the flow ends"
    assert_fits_sms(first_message(transcript), lang)
    assert str(transcript) == snapshot


@pytest.mark.parametrize("lang", LANGS)
def test_an_almost_called_ticket_asks_to_stay_close(palabre_bot, snapshot, lang):
    bot = palabre_bot(FLOWS / "queue_ticket_soon.yaml")
    event = ticket(lang, "ticket.almost_called", eta_minutes=5)
    transcript = bot.start(
        "queue_ticket_soon", lang=lang, contact=CUSTOMER, channel="sms", event=event
    )
    assert "A042" in transcript.last and "5" in transcript.last
    assert event["data"]["customer_name"] in transcript.last
    assert_fits_sms(first_message(transcript), lang)
    assert str(transcript) == snapshot


@pytest.mark.parametrize("lang", LANGS)
def test_a_called_ticket_is_kept_when_the_customer_replies_1(palabre_bot, snapshot, lang):
    bot = palabre_bot(FLOWS / "queue_ticket_called.yaml")
    event = ticket(lang, "ticket.called")
    called = bot.start(
        "queue_ticket_called", lang=lang, contact=CUSTOMER, channel="sms", event=event
    )
    assert "A042" in called.last and event["data"]["agent_name"] in called.last
    assert called.events[-1] != "flow_completed", "the flow waits for the answer"
    assert_fits_sms(first_message(called), lang)
    answered = bot.converse(["1"], lang=lang, contact=CUSTOMER, channel="sms")
    assert answered.events[0] == "answer_accepted" and answered.events[-1] == "flow_completed"
    assert "3" in answered.last, "the counter is named again"
    assert str(called) + str(answered) == snapshot


@pytest.mark.parametrize("kind", ["trip", "maintenance"])
@pytest.mark.parametrize("lang", LANGS)
def test_a_driver_confirms_an_alert_by_replying_1(palabre_bot, snapshot, lang, kind):
    bot = palabre_bot(FLOWS / "fleet_alert.yaml")
    event = alert(lang, kind)
    sent = bot.start("fleet_alert", lang=lang, contact=DRIVER, channel="whatsapp", event=event)
    for shown in ("4521-AB-01", DAY[lang], "07:30", event["data"]["where"]):
        assert shown in sent.last, f"{shown!r} is in the alert"
    assert_fits_sms(first_message(sent), lang, segments=2)  # sent by WhatsApp, short anyway
    confirmed = bot.converse(["1"], lang=lang, contact=DRIVER, channel="whatsapp")
    assert confirmed.events[0] == "answer_accepted" and confirmed.events[-1] == "flow_completed"
    assert event["data"]["driver_name"] in confirmed.last, "the driver is thanked by name"
    assert str(sent) + str(confirmed) == snapshot


@pytest.mark.parametrize(
    ("eta", "wait"),
    [
        (0, "أقل من دقيقة"),
        (1, "دقيقة واحدة"),
        (2, "دقيقتان"),
        (5, "5 دقائق"),
        (12, "12 دقيقة"),
        ("12", "12 دقيقة"),  # `palabre notify --data eta_minutes=12` sends text
    ],
)
def test_the_arabic_wait_agrees_with_its_number(palabre_bot, eta, wait):
    """Each Arabic plural form of the wait, chosen by babel's rule for the number."""
    bot = palabre_bot(FLOWS / "queue_ticket_created.yaml")
    event = ticket("ar", "ticket.created", eta_minutes=eta)
    transcript = bot.start(
        "queue_ticket_created", lang="ar", contact=CUSTOMER, channel="sms", event=event
    )
    assert f"الانتظار المتوقع: {wait}." in transcript.last


FIRST_STEPS = [  # (flow, the event in a language, a value its template must carry)
    ("queue_ticket_created", lambda lang: ticket(lang, "ticket.created"), "A042"),
    ("queue_ticket_soon", lambda lang: ticket(lang, "ticket.almost_called"), "A042"),
    ("queue_ticket_called", lambda lang: ticket(lang, "ticket.called"), "A042"),
    ("fleet_alert", lambda lang: alert(lang, "trip"), "4521-AB-01"),
    ("fleet_alert", lambda lang: alert(lang, "maintenance"), "4521-AB-01"),
]


@pytest.mark.parametrize(("flow_id", "event_in", "carried"), FIRST_STEPS)
def test_on_whatsapp_each_first_message_carries_its_template_in_the_language(
    palabre_bot, flow_id, event_in, carried
):
    sids = set()
    for lang in LANGS:
        bot = palabre_bot(FLOWS / f"{flow_id}.yaml")
        event = event_in(lang)
        sent = bot.start(flow_id, lang=lang, contact=DRIVER, channel="whatsapp", event=event)
        template = sent.replies[0].messages[0].template
        assert template is not None, "the first message may leave outside the 24-hour window"
        meta, twilio = template["meta"], template["twilio"]
        assert meta["language"] == lang
        (body,) = meta["components"]
        parameters = [p["text"] for p in body["parameters"]]
        variables = [twilio["variables"][str(n)] for n in range(1, len(parameters) + 1)]
        assert parameters == variables, "Meta and Twilio get the same values"
        assert carried in parameters
        assert re.fullmatch(r"HX[0-9a-f]{32}", twilio["content_sid"])
        sids.add(twilio["content_sid"])
    assert len(sids) == len(LANGS), "Twilio approves one content template per language"
