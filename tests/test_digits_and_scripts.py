"""Answers in other scripts: every Unicode decimal digit reads as its ASCII digit, and a name
written in Arabic script for a Latin-letters question gets a hint rather than "too short"."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from palabre.flow.answers import ascii_digits, non_latin_letters
from palabre.i18n import messages as texts
from palabre.i18n.catalogs import Catalogs
from palabre.testing import Tap

ROOT = Path(__file__).parent.parent
UIC = ROOT / "flows" / "uic.yaml"
CATALOGS = Catalogs(ROOT / "locales")
ARABIC_INDIC = "٠١٢٣٤٥٦٧٨٩"  # U+0660-0669
PERSIAN = "۰۱۲۳۴۵۶۷۸۹"  # U+06F0-06F9


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("١٩٩٧", "1997"),
        ("۱۹۹۷", "1997"),
        ("१९९७", "1997"),  # Devanagari
        ("１９９７", "1997"),  # fullwidth
        (ARABIC_INDIC + PERSIAN, "0123456789" * 2),
        ("+٢٤٣ ٨١٢", "+243 812"),
        ("x²", "x²"),  # a superscript is a digit but not a decimal digit: left alone
    ],
)
def test_every_unicode_decimal_digit_reads_as_ascii(written, read):
    assert ascii_digits(written) == read


def test_only_letters_of_another_script_count_as_non_latin():
    assert non_latin_letters("مبنغي")
    assert non_latin_letters("Мбенге")
    assert not non_latin_letters("Gédéon N'Djamena 😀 ١٩٩٧")


def test_a_uic_conversation_in_arabic_with_arabic_indic_digits(palabre_bot):
    transcript = palabre_bot(UIC).converse(["مرحبا", "Mbengue", "Ibrahima", "١٩٩٧", "DA", "١"])
    assert transcript.replies[0].messages[0].language == "ar"
    assert "answer_rejected" not in transcript.events
    assert "MBEIBR7DA1" in transcript.last


@pytest.mark.parametrize("year", ["۱۹۹۷", "۷", "١٩٩٧", "٧"])
def test_persian_and_arabic_indic_years(palabre_bot, year):
    transcript = palabre_bot(UIC).converse(["Bonjour", "Mbengue", "Ibrahima", year, "DA", "۲"])
    assert "answer_rejected" not in transcript.events
    assert "MBEIBR7DA2" in transcript.last
    languages = {m.language for reply in transcript.replies for m in reply.messages}
    assert languages == {"fr"}, "digits are not words: the conversation stays in French"


@pytest.mark.parametrize(
    ("lang", "greeting"), [("fr", "Bonjour"), ("en", "Hello"), ("ar", "مرحبا")]
)
def test_an_arabic_script_name_gets_the_latin_letters_hint(palabre_bot, lang, greeting):
    transcript = palabre_bot(UIC).converse([greeting, "مبنغي"], lang=lang)
    hint = CATALOGS.gettext(lang, texts.LATIN_LETTERS)
    if lang != "en":
        assert hint != texts.LATIN_LETTERS, f"the hint is not translated in {lang}"
    reply = transcript.replies[-1].messages[0]
    assert reply.language == lang
    assert reply.text.startswith(hint)
    assert CATALOGS.gettext(lang, "That answer is too short.") not in reply.text
    assert transcript.events.count("answer_rejected") == 1


def test_latin_letters_next_to_arabic_ones_are_kept(palabre_bot):
    transcript = palabre_bot(UIC).converse(
        ["Bonjour", "Mbengue مبنغي", "Ibrahima", "7", "DA", "1"], lang="fr"
    )
    assert "answer_rejected" not in transcript.events
    assert "MBEIBR7DA1" in transcript.last


RULES_FLOW = """
id: rules
settings: {locales: [en], default_locale: en}
steps:
  year: {kind: ask, text: "Year?", normalize: [digits], validate: {min: 1900, max: 2026}, save_as: year}
  count: {kind: ask, text: "How many?", validate: {digits: true}, save_as: count}
  phone: {kind: ask, text: "Phone?", normalize: [phone], validate: {phone: true}, save_as: phone}
  born: {kind: ask, text: "Born?", validate: {date: true}, save_as: born}
  pick: {kind: ask, text: Pick, choices: [{id: a, title: Apple}, {id: b, title: Pear}], save_as: pick}
  done: {kind: end, text: "{{ year }} {{ count }} {{ phone }} {{ born }} {{ pick }}"}
"""


def test_number_phone_date_and_choice_rules_read_other_digits(palabre_bot, tmp_path):
    flow = tmp_path / "rules.yaml"
    flow.write_text(textwrap.dedent(RULES_FLOW).lstrip(), encoding="utf-8")
    transcript = palabre_bot(flow).converse(
        ["hello", "١٩٩٧", "۱۲", "+٢٤٣ ٨١٢ ٣٤٥ ٦٧٨", "٣١/١٢/١٩٩٠", "٢"], lang="en"
    )
    assert "answer_rejected" not in transcript.events, transcript
    assert transcript.last == "1997 12 +243812345678 31/12/1990 b"


def test_out_of_range_numbers_in_other_digits_are_still_refused(palabre_bot, tmp_path):
    flow = tmp_path / "rules.yaml"
    flow.write_text(textwrap.dedent(RULES_FLOW).lstrip(), encoding="utf-8")
    transcript = palabre_bot(flow).converse(["hello", "١٨٠٠", "١٩٩٧", "٣"], lang="en")
    assert transcript.events.count("answer_rejected") == 1
    assert "That number is too small." in str(transcript)
    assert "answer_accepted" in transcript.events


def test_a_tap_still_wins_over_digits(palabre_bot):
    transcript = palabre_bot(UIC).converse(["مرحبا", "Mbengue", "Ibrahima", "٧", "DA", Tap("2")])
    assert "MBEIBR7DA2" in transcript.last
