"""Global commands: understood at every step, in every language, as a whole message.

A command matches only when the whole message is the command word (after folding case,
accents and punctuation), never as a substring: "hi" does not hide inside "chiffre".
STOP is not a command: its words live in the catalogs (palabre.runtime.keywords).
"""

from __future__ import annotations

from dataclasses import dataclass

from palabre.i18n.language import fold

WORDS = {
    "restart": "restart reset recommencer redemarrer reinitialiser menu إعادة ابدا_من_جديد",
    "help": "help aide aidez-moi مساعدة",
    "language": "language lang langue langues لغة اللغة",
}
LANGUAGE_WORDS = {
    "fr": "fr francais french فرنسي الفرنسية",
    "en": "en english anglais انجليزي الانجليزية",
    "ar": "ar arabe arabic عربي العربية",
}


def _table(source: dict[str, str]) -> dict[str, str]:
    return {
        fold(word.replace("_", " ")): name
        for name, words in source.items()
        for word in words.split()
    }


COMMANDS = _table(WORDS)
LANGUAGES = _table(LANGUAGE_WORDS)


@dataclass(frozen=True)
class Command:
    """A recognised command; `language` is set for "language ar" and for a bare "english"."""

    name: str
    language: str | None = None


def parse_command(text: str, *, allow_bare_language: bool = True) -> Command | None:
    """The command that `text` is, or None when it is an ordinary message."""
    folded = fold(text)
    if not folded:
        return None
    if folded in COMMANDS:
        return Command(COMMANDS[folded])
    head, _, rest = folded.partition(" ")
    if COMMANDS.get(head) == "language" and rest in LANGUAGES:
        return Command("language", LANGUAGES[rest])
    if allow_bare_language and folded in LANGUAGES and len(folded) > 2:
        return Command("language", LANGUAGES[folded])
    return None


def parse_language(text: str) -> str | None:
    """A language named by `text` ("english", "2" is not handled here), or None."""
    return LANGUAGES.get(fold(text))
