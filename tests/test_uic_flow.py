"""The UIC questionnaire end to end, in French, English and Arabic, as transcripts.

The snapshots in __snapshots__/test_uic_flow.ambr are what contacts read: review them
like code.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from palabre.config import Settings
from palabre.errors import ConfigError
from palabre.testing import Tap, Voice, Wait

UIC = Path(__file__).parent.parent / "flows" / "uic.yaml"
ANSWERS = ["Mbengue", "Ibrahima", "1997", "DA", "1"]


@pytest.mark.parametrize(
    ("lang", "greeting"), [("fr", "Bonjour"), ("en", "Hello"), ("ar", "مرحبا")]
)
def test_happy_path_in_each_language(palabre_bot, snapshot, lang, greeting):
    transcript = palabre_bot(UIC).converse([greeting, *ANSWERS])
    assert "MBEIBR7DA1" in transcript.last
    assert transcript.replies[0].messages[0].language == lang
    assert str(transcript) == snapshot


def test_the_greeting_is_never_taken_as_the_first_answer(palabre_bot):
    transcript = palabre_bot(UIC).converse(["Bonjour", "Kabila", "Joseph", "1971", "KI", "1"])
    assert "KABJOS1KI1" in transcript.last


@pytest.mark.parametrize(
    ("answers", "code"),
    [
        (["Gédéon", "N'Djamena", "7", "kinshasa", "Femme"], "GEDNDJ7KI2"),
        (["li", "Ôm", "2003", "Lubumbashi", "Autre"], "LIXOMX3LU4"),
    ],
)
def test_answers_are_normalized(palabre_bot, answers, code):
    transcript = palabre_bot(UIC).converse(["Bonjour", *answers], lang="fr")
    assert code in transcript.last


def test_wrong_answers_help_and_restart(palabre_bot, snapshot):
    transcript = palabre_bot(UIC).converse(
        [
            "Bonjour",
            "😀",  # emoji: no letters
            Voice(),
            "x" * 5000,
            "Mbengue",
            "aide",
            "Ibrahima",
            "",
            "l'an 97",  # not a year
            "recommencer",
            "Mbengue",
            "Ibrahima",
            "7",
            "D",
            "DA",
            "9",
            Tap("2"),
        ],
        lang="fr",
    )
    assert "MBEIBR7DA2" in transcript.last
    assert transcript.events.count("answer_rejected") == 7
    assert "command_help" in transcript.events
    assert "command_restart" in transcript.events
    assert str(transcript) == snapshot


def test_too_many_wrong_answers_end_politely(palabre_bot):
    transcript = palabre_bot(UIC).converse(["Bonjour", "M", "M", "M", "M", "Mbengue"], lang="fr")
    assert transcript.events.count("answer_rejected") == 4
    assert "conversation_abandoned" in transcript.events
    assert transcript.replies[4].messages[0].text == (
        "Trop d'essais. Envoyez un message pour recommencer."
    )
    # The next message starts a new conversation; it is not an answer.
    assert transcript.replies[5].messages[-1].text.startswith("1/5")


def test_language_change_mid_conversation(palabre_bot, snapshot):
    transcript = palabre_bot(UIC).converse(
        [
            "Bonjour",
            "Mbengue",
            "langue",
            "3",
            "Ibrahima",
            "english",
            "1997",
            "العربية",
            "DA",
            "رجل",
        ],
    )
    assert "MBEIBR7DA1" in transcript.last
    assert transcript.replies[-1].messages[0].language == "ar"
    assert str(transcript) == snapshot


def test_expiry_restarts_and_never_stores_the_late_message_as_an_answer(palabre_bot, snapshot):
    bot = palabre_bot(UIC)
    transcript = bot.converse(
        ["Bonjour", "Mbengue", Wait("2h"), "Ibrahima", "Mbengue", "Ibrahima", "1997", "DA", "1"],
        lang="fr",
    )
    assert "session_expired" in transcript.events
    assert "MBEIBR7DA1" in transcript.last
    assert str(transcript) == snapshot


def test_a_returning_person_is_told_their_code_exists(palabre_bot, snapshot):
    bot = palabre_bot(UIC)
    first = bot.converse(["Bonjour", *ANSWERS], lang="fr", contact="+243810000001")
    again = bot.converse(["Bonjour", *ANSWERS], lang="fr", contact="+243820000002")
    assert "existe déjà" not in first.last
    assert "MBEIBR7DA1 existe déjà" in again.last
    assert str(again) == snapshot


def test_stop_ends_the_conversation(palabre_bot):
    bot = palabre_bot(UIC)
    transcript = bot.converse(["Bonjour", "Mbengue", "stop", "Ibrahima"], lang="fr")
    assert transcript.events[-2:] != ["answer_accepted"]
    assert "conversation_stopped" in transcript.events
    # After stop, the next message starts afresh: it is not the first-name answer.
    assert transcript.replies[-1].messages[-1].text.startswith("1/5")


def test_the_registry_holds_no_clear_data_and_the_session_is_gone(palabre_bot, tmp_path):
    bot = palabre_bot(UIC)
    bot.converse(["Bonjour", *ANSWERS], lang="fr", contact="+243810000001")
    registry = b"".join(p.read_bytes() for p in tmp_path.rglob("palabre.db*"))
    assert len(registry) > 0
    for clear in (b"MBEIBR7DA1", b"Mbengue", b"MBE", b"Ibrahima", b"243810000001"):
        assert clear not in registry, f"{clear!r} is stored in clear"
    session = bot._loop.run_until_complete(bot.engine.store.get("+243810000001"))
    assert session is None, "a finished conversation keeps no answers"


def test_without_a_secret_the_flow_refuses_to_start(tmp_path):
    from palabre.bootstrap import build_engine

    with pytest.raises(
        ConfigError,
        match=r"uic\.yaml: flow 'uic' cannot start: the secret PALABRE_SECRET is not set",
    ):
        build_engine([UIC], Settings(data_dir=tmp_path))


def test_the_code_comes_with_a_qr_code_image_of_it(palabre_bot):
    from tests.test_qr import decode

    bot = palabre_bot(UIC)
    transcript = bot.converse(["Bonjour", *ANSWERS], lang="fr")
    message = transcript.replies[-1].messages[-1]
    assert message.image, "the last message carries the QR code"
    media = bot._loop.run_until_complete(bot.engine.stores.media.get(message.image))
    assert media.content_type == "image/png"
    assert decode(media.data) == "MBEIBR7DA1"
