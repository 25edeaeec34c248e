"""STOP and START in every language (palabre.runtime.keywords), from the catalogs, and what
they do: the engine records them in the consent ledger before the turn commits."""

from __future__ import annotations

from pathlib import Path

import pytest

from palabre.bootstrap import build_engine
from palabre.config import Settings
from palabre.runtime.messages import Inbound

pytestmark = pytest.mark.anyio

UIC = Path(__file__).parent.parent / "flows" / "uic.yaml"
SECRET = {"PALABRE_SECRET": "keywords-test-secret-" + "0" * 32}
PHONE = "whatsapp:+243810000061"


@pytest.fixture
async def engine(tmp_path: Path):
    opened = build_engine([UIC], Settings(data_dir=tmp_path / "data", secrets=SECRET))
    yield opened
    await opened.aclose()


@pytest.mark.parametrize(
    ("text", "kind", "language"),
    [
        ("STOP", "stop", None),  # in every list
        ("stop!", "stop", None),
        ("Arrêt", "stop", "fr"),
        ("ARRET", "stop", "fr"),
        ("désabonner", "stop", "fr"),
        ("توقف", "stop", "ar"),
        ("إيقاف", "stop", "ar"),
        ("ايقاف", "stop", "ar"),
        ("unsubscribe", "stop", None),  # the English source list: no one language
        ("START", "start", None),
        ("oui", "start", "fr"),
        ("Reprendre", "start", "fr"),
        ("ابدأ", "start", "ar"),
        ("yes", "start", None),
    ],
)
async def test_stop_and_start_words_come_from_every_catalog(engine, text, kind, language):
    keyword = engine.consent_keyword(text)
    assert keyword is not None, f"{text!r} is a {kind} word"
    assert (keyword.kind, keyword.language) == (kind, language)


@pytest.mark.parametrize(
    "text", ["stopper", "je veux arrêter", "STOP STOP", "", "restart", "arrêt " * 40]
)
async def test_only_the_whole_message_is_a_keyword(engine, text):
    assert engine.consent_keyword(text) is None


async def broadcasts(engine, key: str) -> list[tuple[str, bool, str | None]]:
    history = await engine.stores.consent.history(key)
    return [(e.channel, e.granted, e.detail) for e in history if e.purpose == "broadcast"]


@pytest.mark.parametrize(
    ("greeting", "word", "answer"),
    [
        ("Hello", "STOP", "no more announcements"),
        ("Bonjour", "ARRÊT", "plus nos annonces"),
        ("Bonjour", "STOP", "plus nos annonces"),  # the conversation's language
        ("مرحبا", "توقف", "إعلاناتنا"),
    ],
)
async def test_stop_ends_the_conversation_and_withdraws_broadcasts(engine, greeting, word, answer):
    key = engine.contact_key(PHONE)
    await engine.handle(Inbound(PHONE, greeting, channel="whatsapp", message_id="m1"))
    stopped = await engine.handle(Inbound(PHONE, word, channel="whatsapp", message_id="m2"))
    names = stopped.event_names()
    assert "conversation_stopped" in names and "consent_withdrawn" in names
    assert answer in stopped.messages[0].text
    assert await broadcasts(engine, key) == [("whatsapp", False, "stop")]
    assert not await engine.stores.consent.allows(key, "whatsapp", "broadcast")
    assert await engine.stores.consent.allows(key, "whatsapp", "service")
    again = await engine.handle(Inbound(PHONE, word, channel="whatsapp", message_id="m2"))
    assert "message_duplicated" in again.event_names()
    assert len(await broadcasts(engine, key)) == 1, "a redelivered STOP is recorded once"
    fresh = await engine.handle(Inbound(PHONE, "Bonjour", channel="whatsapp", message_id="m3"))
    assert "1/5" in fresh.messages[-1].text, "the contact's own message still starts a flow"


async def test_stop_with_no_conversation_is_answered_in_the_words_language(engine):
    stopped = await engine.handle(Inbound(PHONE, "إيقاف", channel="whatsapp", message_id="m1"))
    assert "إعلاناتنا" in stopped.messages[0].text
    assert "consent_withdrawn" in stopped.event_names()


async def test_start_gives_broadcasts_back_only_to_a_contact_who_stopped(engine):
    key = engine.contact_key(PHONE)
    plain = await engine.handle(Inbound(PHONE, "oui", channel="whatsapp", message_id="m1"))
    assert "consent_given" not in plain.event_names(), "never stopped: oui is just a message"
    await engine.handle(Inbound(PHONE, "stop", channel="whatsapp", message_id="m2"))
    back = await engine.handle(Inbound(PHONE, "oui", channel="whatsapp", message_id="m3"))
    assert "consent_given" in back.event_names()
    assert "annonces" in back.messages[0].text, "answered in French, the list's language"
    assert await engine.stores.consent.allows(key, "whatsapp", "broadcast")
    later = await engine.handle(Inbound(PHONE, "oui", channel="whatsapp", message_id="m4"))
    assert "consent_given" not in later.event_names(), "given back already: oui is an answer"
    assert await broadcasts(engine, key) == [
        ("whatsapp", False, "stop"),
        ("whatsapp", True, "start"),
    ]
