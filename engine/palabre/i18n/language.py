"""Which language a contact writes in: Arabic script, else French or English words."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

ARABIC = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]")
WORD = re.compile(r"[a-z]+")

FRENCH = frozenset(
    "bonjour bonsoir salut coucou merci oui non je suis mon ma mes est le la les des une "
    "svp stp voudrais veux aide commencer ca va bien avec pour dans quoi comment".split()
)
ENGLISH = frozenset(
    "hello hi hey good morning evening thanks thank yes no i am my the is are a an please "
    "want help start with for what how".split()
)

LANGUAGE_NAMES = {"fr": "Français", "en": "English", "ar": "العربية"}


@lru_cache(maxsize=4096)  # the same choices and answers are folded for message after message
def fold(text: str) -> str:
    """Lower-case, accents dropped, Arabic letter variants unified, spaces collapsed."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.translate(_ARABIC_VARIANTS)
    return " ".join(re.sub(r"[^\w\s'-]", " ", text).split())


_ARABIC_VARIANTS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ى": "ي", "ة": "ه", "ـ": None})


def detect(text: str, allowed: tuple[str, ...]) -> str | None:
    """The language `text` is most likely written in, among `allowed`, or None."""
    if ARABIC.search(text):
        return "ar" if "ar" in allowed else None
    words = WORD.findall(fold(text))
    french = sum(word in FRENCH for word in words)
    english = sum(word in ENGLISH for word in words)
    if french > english and "fr" in allowed:
        return "fr"
    if english > french and "en" in allowed:
        return "en"
    return None
