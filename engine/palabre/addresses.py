"""Contact addresses: parse what people and providers write, into one canonical form.

A contact is reached at one or more addresses, each written `scheme:value`:

    tel:+243812345678                  a phone number (SMS), E.164
    whatsapp:+243812345678             a WhatsApp account, by its phone number, E.164
    whatsapp-user:US.13491208655302741918
                                       a WhatsApp account by Meta's business-scoped user id
    web:<session>:<flow>               the web simulator's own contacts (opaque)

Why `whatsapp-user:` for business-scoped user ids (BSUIDs): from 2026 a WhatsApp user who
adopts a username may reach a business with no phone number at all. Meta then identifies
them by a BSUID, in webhook fields `messages[].from_user_id`, `contacts[].user_id` and
`statuses[].recipient_user_id`, and a send names it in `recipient` instead of `to`. A BSUID
is a two-letter country code, a dot and up to 128 letters and digits (`US.1349...`); a
parent BSUID, shared by linked business portfolios, has `ENT.` after the country code. It
is a WhatsApp *user* id, not a number and not Meta jargon Palabre's readers should need, so
the scheme says the channel and the kind: `whatsapp-user:`. Its value is kept exactly as
Meta sent it (Meta asks for that), case included.

Phone numbers are parsed and formatted by `phonenumbers`. `parse_address` is for what a
person or a setting writes: international (`+243...`, `00243...`), national (`0812345678`
with the default region CD), with spaces, dashes, dots or parentheses, in any script's
digits. It accepts only numbers `phonenumbers` holds valid. `read_address` reads an address
already in canonical form (a stored or passed-along contact): it checks the structure, not
the numbering plan, so that a number a provider vouched for (see `provider_phone`) stays
reachable even when this machine's `phonenumbers` data is older than the number.

Errors: `InvalidAddress` (a ValueError and a PalabreError) says what is wrong and why, and
never repeats the number: addresses are personal data.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

from palabre.errors import PalabreError

TEL, WHATSAPP, WHATSAPP_USER, WEB = "tel", "whatsapp", "whatsapp-user", "web"
PHONE_SCHEMES = (TEL, WHATSAPP)
SCHEMES = (TEL, WHATSAPP, WHATSAPP_USER, WEB)
CHANNELS = {TEL: "sms", WHATSAPP: "whatsapp", WHATSAPP_USER: "whatsapp", WEB: "web"}

BSUID = re.compile(r"[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}")
E164 = re.compile(r"\+[1-9][0-9]{6,14}")  # ITU-T E.164: at most 15 digits, no leading 0
WEB_ID = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
MAX_PHONE_INPUT = 64  # far above any written number; phonenumbers' own cap is 250
# What people write between digits: spaces, dashes (any kind), dots, slashes, parentheses.
_PUNCTUATION = frozenset("+-./()\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\uff0d")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,30}):(.*)", re.DOTALL)
_COUNTRY_CODES = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


class InvalidAddress(PalabreError, ValueError):
    """Text that is no address Palabre can reach; `reason` says why, without the address."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"not a valid address: {reason}")
        self.reason = reason


@dataclass(frozen=True, order=True)
class Address:
    """One way to reach a contact: a scheme (`tel`, `whatsapp`...) and its canonical value.

    `str(address)` is the canonical form (`whatsapp:+243812345678`), the one contact keys
    are hashed from: the same person written two ways is one contact.
    """

    scheme: str
    value: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.value}"

    @property
    def channel(self) -> str:
        """ "sms", "whatsapp" or "web": where messages to this address travel."""
        return CHANNELS[self.scheme]

    @property
    def phone(self) -> str | None:
        """The E.164 number (`+243...`) of a `tel:` or `whatsapp:` address, else None."""
        return self.value if self.scheme in PHONE_SCHEMES else None


def parse_address(text: str, default_region: str | None = None) -> Address:
    """The address `text` names, as a person or a setting writes it; InvalidAddress if none.

    `default_region` (ISO 3166 alpha-2, e.g. "CD", from PALABRE_DEFAULT_REGION) reads
    national numbers such as `0812345678`. A bare number is a `tel:` address.
    """
    text = text.strip()
    if not text:
        raise InvalidAddress("it is empty")
    scheme, rest = _split_scheme(text)
    if scheme == WHATSAPP_USER or (scheme is None and BSUID.fullmatch(rest)):
        return Address(WHATSAPP_USER, _bsuid(rest))
    if scheme == WEB:
        return Address(WEB, _web_id(rest))
    return Address(scheme or TEL, parse_phone(rest, default_region))


def read_address(text: str) -> Address:
    """An address in canonical form (`whatsapp:+243...`), its structure checked.

    For contacts already read from a provider or stored: a `+` number of E.164 shape is
    accepted as it is (see the module docstring). Any other text goes to `parse_address`,
    without a default region.
    """
    scheme, rest = _split_scheme(text)
    if scheme in PHONE_SCHEMES and E164.fullmatch(rest):
        return Address(scheme, rest)
    return parse_address(text)


@lru_cache(maxsize=4096)  # a notification's person is often notified again soon
def parse_phone(text: str, default_region: str | None = None) -> str:
    """The E.164 form (`+243812345678`) of a written phone number; InvalidAddress if none."""
    text = text.strip()
    if E164.fullmatch(text) and _valid_as_written(text):
        return text
    return parsed_phone(text, default_region)


def parsed_phone(text: str, default_region: str | None = None) -> str:
    """`parse_phone` by a full parse every time, whatever the shape of `text`."""
    _check_characters(text)
    digits = sum(unicodedata.digit(c, -1) >= 0 for c in text)
    if digits == 0:
        raise InvalidAddress("it has no digits")
    region = default_region.upper() if default_region else None
    if region is None and text.startswith("00"):
        text = "+" + text[2:]  # the most common international prefix, with no region to ask
    number = _parse(text, region)
    _check_possible(number)
    if not phonenumbers.is_valid_number(number):
        raise InvalidAddress(_invalid_reason(number))
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _valid_as_written(text: str) -> bool:
    """Whether `text`, E.164 in shape, is a valid number just as written: then it needs no
    parse (a parse costs several times this check; an API's caller sends E.164). Its country
    code is its first digits (no code is the start of another), the rest its national
    number. False leaves it to the parse, which may still accept it in another form (a
    national prefix written after the country code, which it strips) or says why not; so
    does a national number starting with 0 (Italy's keep it, as the parse records)."""
    digits = text[1:]
    code = next((n for size in (1, 2, 3) if (n := int(digits[:size])) in _COUNTRY_CODES), 0)
    national = digits[len(str(code)) :] if code else ""
    if not national or national.startswith("0"):
        return False
    number = phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
    possible = phonenumbers.is_possible_number_with_reason(number) == ValidationResult.IS_POSSIBLE
    return possible and phonenumbers.is_valid_number(number)


def provider_phone(text: str) -> str:
    """The E.164 form of a number a provider sends (`+243...` or `243...`); InvalidAddress.

    A provider sends the numbers it delivers to in E.164 already: one of that shape is
    kept as it is, with no look at the numbering plan, so that a range newer than this
    machine's `phonenumbers` data never loses the person (and every webhook skips a
    parse that costs more than the rest of reading it). Any other shape is parsed.
    """
    raw = text.strip()
    candidate = raw if raw.startswith("+") else f"+{raw}"
    if E164.fullmatch(candidate):
        return candidate
    return _parsed_provider_phone(candidate)


@lru_cache(maxsize=1024)
def _parsed_provider_phone(candidate: str) -> str:
    return parse_phone(candidate)


def is_region(code: str) -> bool:
    """True for an ISO 3166 alpha-2 region `phonenumbers` knows, such as CD or FR."""
    return code.strip().upper() in phonenumbers.SUPPORTED_REGIONS


def _split_scheme(text: str) -> tuple[str | None, str]:
    """(scheme, rest) for `scheme:rest`; (None, text) for a bare number or BSUID."""
    match = _SCHEME.fullmatch(text)
    if match is None:
        return None, text
    scheme = match.group(1).lower()
    if scheme not in SCHEMES:
        raise InvalidAddress(f"its scheme is none of {', '.join(SCHEMES)}")
    return scheme, match.group(2).strip()


def _bsuid(text: str) -> str:
    if not BSUID.fullmatch(text):
        raise InvalidAddress(
            "a WhatsApp user id is a two-letter country code, a dot and up to 128 letters "
            "and digits, like US.13491208655302741918"
        )
    return text


def _web_id(text: str) -> str:
    if not WEB_ID.fullmatch(text):
        raise InvalidAddress("a web contact id is letters, digits, '.', '_', ':' or '-'")
    return text


def _check_characters(text: str) -> None:
    if len(text) > MAX_PHONE_INPUT:
        raise InvalidAddress(f"it is longer than {MAX_PHONE_INPUT} characters")
    for char in text:
        if char.isspace() or char in _PUNCTUATION or unicodedata.digit(char, -1) >= 0:
            continue
        kind = "letters" if char.isalpha() else "characters no phone number has"
        raise InvalidAddress(f"it is not a phone number: it has {kind}")
    if "+" in text[1:]:
        raise InvalidAddress("it is not a phone number: '+' can only come first")


_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "its country code is unknown",
    NumberParseException.NOT_A_NUMBER: "it is not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "it is too short",
    NumberParseException.TOO_SHORT_NSN: "it is too short",
    NumberParseException.TOO_LONG: "it is too long",
}


def _parse(text: str, region: str | None) -> phonenumbers.PhoneNumber:
    if region is None and not text.startswith("+"):
        raise InvalidAddress(
            "it has no country code: write it as +<country code><number>, "
            "or set PALABRE_DEFAULT_REGION to read national numbers"
        )
    if region is not None and region not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidAddress(f"the region {region!r} is unknown (use ISO 3166 codes like CD)")
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException as exc:
        reason = _PARSE_REASONS.get(exc.error_type, "it is not a phone number")
        raise InvalidAddress(reason) from None


_POSSIBLE_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: "its country code is unknown",
    ValidationResult.TOO_SHORT: "it is too short",
    ValidationResult.TOO_LONG: "it is too long",
    ValidationResult.INVALID_LENGTH: "it has the wrong number of digits for its country",
}


def _check_possible(number: phonenumbers.PhoneNumber) -> None:
    result = phonenumbers.is_possible_number_with_reason(number)
    if result in _POSSIBLE_REASONS:
        raise InvalidAddress(_POSSIBLE_REASONS[result])


def _invalid_reason(number: phonenumbers.PhoneNumber) -> str:
    region = phonenumbers.region_code_for_number(number)
    if region in (None, "ZZ"):
        return "its country code is unknown"
    return f"no such number in {region}'s numbering plan"
