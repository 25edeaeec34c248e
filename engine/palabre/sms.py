"""SMS arithmetic: GSM-7 or UCS-2, how many segments a text costs, and splitting long texts.

An SMS is GSM-7 when every character is in the GSM 03.38 basic set or its extension table
(whose characters cost two septets: an escape and the character). Anything else, Arabic
and emoji included, makes the whole message UCS-2, counted in UTF-16 code units.
One segment holds 160 septets (GSM-7) or 70 units (UCS-2); a concatenated message loses
room to its header: 153 septets or 67 units per segment. A segment never ends between
an escape and its character, nor between the two halves of a surrogate pair.
Twilio accepts at most 1600 characters per message: `split_for_sms` cuts longer texts
into parts of whole segments, at word boundaries when it can.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE = {"GSM-7": 160, "UCS-2": 70}
CONCATENATED = {"GSM-7": 153, "UCS-2": 67}
MAX_MESSAGE_CHARS = 1600


def encoding(text: str) -> str:
    """ "GSM-7" when every character fits the GSM 03.38 tables, else "UCS-2"."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        return "GSM-7"
    return "UCS-2"


def cost(char: str, scheme: str) -> int:
    """What one character takes in `scheme`: septets (GSM-7) or UTF-16 code units (UCS-2)."""
    if scheme == "GSM-7":
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def size(text: str, scheme: str | None = None) -> int:
    """The length of `text` in the units of its encoding (septets or UTF-16 code units)."""
    scheme = scheme or encoding(text)
    return sum(cost(c, scheme) for c in text)


def segments(text: str) -> list[str]:
    """The pieces a phone network carries `text` in; empty text is no segment at all."""
    scheme = encoding(text)
    if size(text, scheme) <= SINGLE[scheme]:
        return [text] if text else []
    room = CONCATENATED[scheme]
    pieces: list[str] = []
    start, used = 0, 0
    for i, char in enumerate(text):
        if used + cost(char, scheme) > room:
            pieces.append(text[start:i])
            start, used = i, 0
        used += cost(char, scheme)
    pieces.append(text[start:])
    return pieces


def segment_count(text: str) -> int:
    """How many segments `text` costs as one SMS."""
    return len(segments(text))


def split_for_sms(text: str, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """Cut `text` into messages of at most `limit` characters, each a whole number of segments.

    Cuts fall at word boundaries when one is near; a word longer than a message is cut
    between characters (never inside a surrogate pair or before a combining mark).
    """
    scheme = encoding(text)
    if len(text) <= limit and size(text, scheme) <= limit:
        return [text] if text else []
    per_segment = CONCATENATED[scheme]
    budget = max(per_segment, limit // per_segment * per_segment)
    return split_at_words(text, budget, lambda part: size(part, scheme))


def split_at_words(text: str, budget: int, measure: Callable[[str], int] = len) -> list[str]:
    """Cut `text` into parts with `measure(part) <= budget`, preferring whitespace cuts."""
    parts: list[str] = []
    rest = text.strip()
    while rest:
        if measure(rest) <= budget:
            parts.append(rest)
            break
        cut = _cut(rest, budget, measure)
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return parts


def _cut(text: str, budget: int, measure: Callable[[str], int]) -> int:
    """Where to cut `text`: the last whitespace within budget, else the last safe character."""
    fits = _longest_prefix(text, budget, measure)
    space = max(text.rfind(" ", 0, fits + 1), text.rfind("\n", 0, fits + 1))
    if space > fits // 2:
        return space
    while fits > 1 and (_joins_previous(text[fits]) or text[fits - 1] == "\u200d"):
        fits -= 1
    return fits


def _longest_prefix(text: str, budget: int, measure: Callable[[str], int]) -> int:
    """The number of characters of `text` whose measure fits in `budget`."""
    used = 0
    for i, char in enumerate(text):
        used += measure(char)
        if used > budget:
            return i
    return len(text)


def _joins_previous(char: str) -> bool:
    """True for a character that belongs with the one before (accents, ZWJ, selectors)."""
    return (
        unicodedata.combining(char) > 0
        or char in "\u200d\ufe0e\ufe0f"
        or ("\U0001f3fb" <= char <= "\U0001f3ff")
    )
