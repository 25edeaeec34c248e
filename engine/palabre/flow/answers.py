"""How a question cleans and checks an answer: normalizers, then validation rules.

Answers arrive here with every Unicode decimal digit already read as ASCII (`ascii_digits`,
applied by `read_answer`), so normalizers and rules only ever deal with 0-9.
Normalizers run first, in the order the flow lists them; rules then check the cleaned
value. Each rule names the message the contact sees when it fails; those messages are
translated in the engine's catalog.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from palabre.i18n.messages import N_


def ascii_digits(text: str) -> str:
    """Every Unicode decimal digit as its ASCII digit: ١٩٩٧ (Arabic-Indic), ۱۹۹۷ → 1997."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text)


def ascii_fold(text: str) -> str:
    """Drop accents: NFKD, then keep only ASCII (Gédéon → Gedeon, N'Djamena → N'Djamena)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return decomposed.encode("ascii", "ignore").decode("ascii")


def non_latin_letters(text: str) -> bool:
    """True when `text` has letters of another script than Latin (مبنغي, Мбенге)."""
    return any(c.isalpha() and not unicodedata.name(c, "").startswith("LATIN") for c in text)


def _phone(text: str) -> str:
    digits = re.sub(r"[\s().-]", "", text)
    return "+" + digits[2:] if digits.startswith("00") else digits


NORMALIZERS: dict[str, Callable[[str], str]] = {
    "trim": str.strip,
    "upper": str.upper,
    "lower": str.lower,
    "ascii": ascii_fold,
    "letters": lambda text: re.sub(r"[^A-Za-z]", "", ascii_fold(text)),
    # Only ASCII digits survive: read_answer has already turned ١٩٩٧ into 1997.
    "digits": lambda text: re.sub(r"[^0-9]", "", text),
    "collapse_spaces": lambda text: " ".join(text.split()),
    "phone": _phone,
}


@dataclass(frozen=True)
class Rule:
    """A validation rule: the type of its parameter, its check, and its failure message."""

    param: str
    check: Callable[[str, Any], bool]
    message: str


def _number(value: str) -> float | None:
    try:
        return float(value.replace(",", "."))
    except ValueError:
        return None


def _date(value: str, fmt: Any) -> bool:
    formats = [fmt] if isinstance(fmt, str) else ["%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y"]
    for candidate in formats:
        try:
            datetime.strptime(value, candidate)
        except ValueError:
            continue
        return True
    return False


def _at_least(value: str, limit: Any) -> bool:
    number = _number(value)
    return number is not None and number >= limit


def _at_most(value: str, limit: Any) -> bool:
    number = _number(value)
    return number is not None and number <= limit


RULES: dict[str, Rule] = {
    "letters": Rule(
        "bool",
        lambda v, on: not on or v.replace(" ", "").isalpha(),
        N_("Please answer with letters only."),
    ),
    "digits": Rule(
        "bool",
        lambda v, on: not on or re.fullmatch(r"[0-9]+", v) is not None,
        N_("Please answer with digits only."),
    ),
    "min_length": Rule("int", lambda v, n: len(v) >= n, N_("That answer is too short.")),
    "max_length": Rule("int", lambda v, n: len(v) <= n, N_("That answer is too long.")),
    "min": Rule("number", _at_least, N_("That number is too small.")),
    "max": Rule("number", _at_most, N_("That number is too large.")),
    "regex": Rule(
        "regex",
        lambda v, rx: re.fullmatch(rx, v) is not None,
        N_("That answer is not in the expected form."),
    ),
    "phone": Rule(
        "bool",
        lambda v, on: not on or re.fullmatch(r"\+[1-9][0-9]{7,14}", v) is not None,
        N_("Please send a phone number in international form, like +243812345678."),
    ),
    "date": Rule(
        "date", lambda v, fmt: not fmt or _date(v, fmt), N_("Please send a date like 31/12/1990.")
    ),
}

MAX_ANSWER_LENGTH = 1000


def normalize(value: str, names: tuple[str, ...]) -> str:
    """Apply the named normalizers in order."""
    for name in names:
        value = NORMALIZERS[name](value)
    return value


def first_failure(value: str, rules: dict[str, Any]) -> str | None:
    """The failure message of the first rule that `value` breaks, or None when it passes."""
    for name, param in rules.items():
        if not RULES[name].check(value, param):
            return RULES[name].message
    return None
