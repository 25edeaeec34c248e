"""Global commands and language detection: whole words only, in three languages."""

from __future__ import annotations

import pytest

from palabre.flow.answers import RULES, ascii_fold, first_failure, normalize
from palabre.i18n.language import detect
from palabre.runtime.commands import Command, parse_command

ALL = ("fr", "ar", "en")


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("aide", Command("help")),
        ("Help!", Command("help")),
        ("مساعدة", Command("help")),
        ("RECOMMENCER", Command("restart")),
        ("Redémarrer", Command("restart")),
        ("إعادة", Command("restart")),
        ("langue", Command("language")),
        ("language ar", Command("language", "ar")),
        ("langue english", Command("language", "en")),
        ("Français", Command("language", "fr")),
        ("العربية", Command("language", "ar")),
    ],
)
def test_commands_in_every_language(text, command):
    assert parse_command(text) == command


@pytest.mark.parametrize(
    "text", ["chiffre", "je veux de l'aide pour mon code", "stopper", "", "  ", "fr", "1", "😀"]
)
def test_ordinary_messages_are_not_commands(text):
    assert parse_command(text) is None


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Bonjour", "fr"),
        ("salut, ça va ?", "fr"),
        ("Hello", "en"),
        ("hi there, I want my code", "en"),
        ("مرحبا", "ar"),
        ("السلام عليكم", "ar"),
        ("Mbengue", None),
        ("chiffre", None),
    ],
)
def test_language_detection(text, language):
    assert detect(text, ALL) == language


def test_detection_only_offers_the_flows_languages():
    assert detect("مرحبا", ("fr", "en")) is None
    assert detect("Hello", ("fr", "ar")) is None


@pytest.mark.parametrize(
    ("raw", "names", "clean"),
    [
        ("Gédéon", ("letters", "upper"), "GEDEON"),
        ("N'Djamena", ("letters", "upper"), "NDJAMENA"),
        ("  Ñoño  ", ("trim", "ascii"), "Nono"),
        ("l'an 1997", ("digits",), "1997"),
        ("00243 81-234 5678", ("phone",), "+243812345678"),
        ("a   b", ("collapse_spaces",), "a b"),
    ],
)
def test_normalizers(raw, names, clean):
    assert normalize(raw, names) == clean


def test_ascii_fold_drops_accents_and_non_latin():
    assert ascii_fold("Éloïse") == "Eloise"
    assert ascii_fold("سلام") == ""


@pytest.mark.parametrize(
    ("value", "rules", "failure"),
    [
        ("ABC", {"letters": True, "min_length": 2}, None),
        ("A", {"min_length": 2}, RULES["min_length"].message),
        ("ABCD", {"max_length": 3}, RULES["max_length"].message),
        ("A1", {"letters": True}, RULES["letters"].message),
        ("12a", {"digits": True}, RULES["digits"].message),
        ("5", {"min": 1, "max": 4}, RULES["max"].message),
        ("0", {"min": 1}, RULES["min"].message),
        ("2,5", {"min": 1, "max": 4}, None),
        ("abc", {"min": 1}, RULES["min"].message),
        ("1997", {"regex": r"\d|(19|20)\d\d"}, None),
        ("97", {"regex": r"\d|(19|20)\d\d"}, RULES["regex"].message),
        ("+243812345678", {"phone": True}, None),
        ("0812345678", {"phone": True}, RULES["phone"].message),
        ("31/12/1990", {"date": True}, None),
        ("1990-12-31", {"date": True}, None),
        ("31/02/1990", {"date": True}, RULES["date"].message),
        ("12.1990", {"date": "%m.%Y"}, None),
    ],
)
def test_validation_rules(value, rules, failure):
    assert first_failure(value, rules) == failure
