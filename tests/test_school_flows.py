"""The school-parent bot (seed 001): the opt-in, and a notice sent to a parent, in French,
Arabic and English, as transcripts. The snapshots in __snapshots__/test_school_flows.ambr
are what parents read: review them like code."""

from __future__ import annotations

from pathlib import Path

import pytest

FLOWS = Path(__file__).parent.parent / "flows"
OPT_IN, NOTICE = FLOWS / "school_opt_in.yaml", FLOWS / "school_notice.yaml"
PARENT = "whatsapp:+243810000051"


def allows_broadcasts(bot) -> bool:
    consent = bot.engine.stores.consent
    key = bot.engine.contact_key(PARENT)
    return bot._loop.run_until_complete(consent.allows(key, "whatsapp", "broadcast"))


@pytest.mark.parametrize(
    ("greeting", "yes"), [("Bonjour, école", "oui"), ("مرحبا مدرسة", "نعم"), ("Hello school", "1")]
)
def test_a_parent_who_agrees_is_opted_in(palabre_bot, snapshot, greeting, yes):
    bot = palabre_bot(OPT_IN)
    assert not allows_broadcasts(bot), "no broadcast before the parent agrees"
    transcript = bot.converse([greeting, yes], contact=PARENT, channel="whatsapp")
    assert "consent_given" in transcript.events
    assert allows_broadcasts(bot)
    assert str(transcript) == snapshot


def test_a_parent_who_declines_is_not_and_can_change_their_mind(palabre_bot, snapshot):
    bot = palabre_bot(OPT_IN)
    transcript = bot.converse(["Bonjour", "non", "START"], contact=PARENT, channel="whatsapp")
    assert transcript.events.count("consent_withdrawn") == 1
    assert transcript.events[-1] == "consent_given", "START after declining opts in"
    assert allows_broadcasts(bot)
    assert str(transcript) == snapshot


NOTICES = {
    "fr": {"date": "vendredi 5 décembre", "message": "Réunion des parents à 16 h."},
    "ar": {"date": "الجمعة 5 ديسمبر", "message": "اجتماع أولياء الأمور على الساعة 16."},
    "en": {"date": "Friday 5 December", "message": "Parents' meeting at 4 pm."},
}


@pytest.mark.parametrize("lang", ["fr", "ar", "en"])
def test_a_notice_reaches_the_parent_in_their_language(palabre_bot, snapshot, lang):
    bot = palabre_bot(NOTICE)
    params = {"child": "Amina", "class": "CM2", **NOTICES[lang]}
    transcript = bot.start("school_notice", params, lang=lang, contact=PARENT)
    assert NOTICES[lang]["message"] in transcript.last and "Amina (CM2)" in transcript.last
    assert "STOP" in transcript.last, "every notice says how to stop them"
    assert str(transcript) == snapshot
