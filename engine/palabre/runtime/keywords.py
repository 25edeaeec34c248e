"""STOP and START: the words that withdraw, or give back, a contact's broadcast consent.

They are recognised before any flow runs, as the whole message (folded: case, accents,
punctuation and Arabic letter variants do not matter, so "Arrêt !" is ARRET and "إيقاف"
is "ايقاف"), never inside a longer message ("stopper", "je veux arrêter de fumer"). The
words are the translations of `STOP_WORDS` and `START_WORDS` (palabre.i18n.messages) in
every catalog a flow speaks, and the English source, so a translator extends the lists
in the catalog. A contact may write any language's word: before a flow runs, their
language is not known.

STOP ends the conversation and withdraws broadcast consent; START (and its words, such as
OUI) gives it back only to a contact who withdrew it, so an ordinary "oui" stays an
answer. Service messages (replies to what the contact writes) are not affected.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from palabre.i18n import messages as texts
from palabre.i18n.language import fold
from palabre.runtime.speech import Speech

STOP, START = "stop", "start"


@dataclass(frozen=True)
class Keyword:
    """A STOP or START word: its `kind`, and the language whose list has it (None: the
    English source list, or a word every language shares)."""

    kind: str
    language: str | None = None


def keyword_table(speech: Speech, languages: Iterable[str]) -> dict[str, Keyword]:
    """Every folded STOP and START word of `languages` (and English), mapped to its kind."""
    table: dict[str, Keyword] = {}
    for kind, msgid in ((STOP, texts.STOP_WORDS), (START, texts.START_WORDS)):
        lists = [(None, msgid), *((lang, speech.plain(msgid, lang)) for lang in languages)]
        for lang, words in lists:
            for folded in filter(None, (fold(word) for word in words.split(","))):
                known = table.get(folded)
                if known is None:  # STOP's lists come first: a word in both lists stops
                    table[folded] = Keyword(kind, lang)
                elif known.kind == kind and known.language not in (None, lang):
                    table[folded] = Keyword(kind)  # shared by two languages
    return table
