"""Contact addresses (palabre.addresses): parsing, canonical forms, provider forms, settings."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from tests.test_startup_settings import base_env, refused

from palabre.addresses import (
    Address,
    InvalidAddress,
    parse_address,
    parse_phone,
    parsed_phone,
    provider_phone,
    read_address,
)
from palabre.config import Settings
from palabre.errors import PalabreError
from palabre_meta_cloud.compose import recipient_fields
from palabre_twilio.rest import twilio_to

CD = "+243812345678"
BSUID = "US.13491208655302741918"  # Meta's documented example


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("tel:+243812345678", None, f"tel:{CD}"),
        ("whatsapp:+243812345678", None, f"whatsapp:{CD}"),
        ("WhatsApp:+243812345678", None, f"whatsapp:{CD}"),
        ("+243812345678", None, f"tel:{CD}"),
        ("  +243 81 234 5678 ", None, f"tel:{CD}"),
        ("0812345678", "CD", f"tel:{CD}"),
        ("0812345678", "cd", f"tel:{CD}"),
        ("whatsapp:0812345678", "CD", f"whatsapp:{CD}"),
        ("00243812345678", None, f"tel:{CD}"),
        ("00243812345678", "CD", f"tel:{CD}"),
        ("(081) 234-56.78", "CD", f"tel:{CD}"),
        ("081/234\u201156\u201378", "CD", f"tel:{CD}"),
        ("٠٨١٢٣٤٥٦٧٨", "CD", f"tel:{CD}"),  # Arabic-Indic digits
        ("۰۸۱۲۳۴۵۶۷۸", "CD", f"tel:{CD}"),  # Eastern Arabic-Indic (Persian) digits
        ("+٢٤٣٨١٢٣٤٥٦٧٨", None, f"tel:{CD}"),
        ("06 12 34 56 78", "FR", "tel:+33612345678"),
        ("+243812345678", "FR", f"tel:{CD}"),  # an international number ignores the region
        (BSUID, None, f"whatsapp-user:{BSUID}"),
        (f"whatsapp-user:{BSUID}", "CD", f"whatsapp-user:{BSUID}"),
        (
            "whatsapp-user:US.ENT.11815799212886844830",
            None,
            "whatsapp-user:US.ENT.11815799212886844830",
        ),
        ("web:0123abcd-ef:uic", None, "web:0123abcd-ef:uic"),
    ],
)
def test_what_people_and_settings_write_becomes_one_canonical_form(text, region, expected):
    assert str(parse_address(text, region)) == expected


@pytest.mark.parametrize(
    ("text", "region", "reason"),
    [
        ("", "CD", "empty"),
        ("   ", "CD", "empty"),
        ("0812345678", None, "no country code"),
        ("081234", "CD", "too short"),
        ("+2431", None, "too short"),
        ("08123456789012", "CD", "too long"),
        ("+24381234567890123", None, "too long"),
        ("+24312345678", None, "numbering plan"),  # possible length, no such number in CD
        ("+999812345678", None, "country code"),
        ("08I2345678", "CD", "letters"),
        ("call me", "CD", "letters"),
        ("0812345678;ext=1", "CD", "characters no phone number has"),
        ("+243+812345678", None, "'+' can only come first"),
        ("+", None, "no digits"),
        ("---", "CD", "no digits"),
        ("0812345678", "XX", "region"),
        ("mailto:someone@example.org", None, "scheme"),
        ("whatsapp-user:us.1349", None, "WhatsApp user id"),
        ("whatsapp-user:", None, "WhatsApp user id"),
        ("web:a b", None, "web contact id"),
        ("tel:" + "1" * 80, "CD", "longer than"),
    ],
)
def test_what_is_no_address_says_why_without_repeating_it(text, region, reason):
    with pytest.raises(InvalidAddress) as caught:
        parse_address(text, region)
    assert reason in caught.value.reason
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, PalabreError)
    digits = "".join(c for c in text if c.isdigit())
    if len(digits) >= 6:
        assert digits not in str(caught.value), "the number is personal data: never echoed"


@pytest.mark.parametrize(
    "address",
    [
        Address("tel", CD),
        Address("whatsapp", "+33612345678"),
        Address("whatsapp-user", BSUID),
        Address("web", "0123abcd:uic"),
    ],
)
def test_canonical_forms_read_back_as_themselves(address):
    assert parse_address(str(address)) == address
    assert parse_address(str(address), "FR") == address, "a region never changes one"
    assert read_address(str(address)) == address


def test_a_number_a_provider_vouches_for_is_kept_even_when_phonenumbers_does_not_know_it():
    assert provider_phone("243812345678") == CD
    assert provider_phone("+243812345678") == CD
    unknown_range = "+24312345678"  # E.164-shaped, but not in phonenumbers' data for CD
    assert provider_phone(unknown_range) == unknown_range
    assert read_address(f"whatsapp:{unknown_range}") == Address("whatsapp", unknown_range)
    for junk in ("Vodacom", "12", "+0123456789", "1" * 16):
        with pytest.raises(InvalidAddress):
            provider_phone(junk)


def test_a_provider_number_in_e164_is_kept_as_phonenumbers_would_format_it():
    """The shortcut for E.164-shaped provider numbers gives what the full parse gives, for
    the example mobile and fixed numbers of every region phonenumbers knows."""
    kinds = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE)
    checked = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in kinds:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            number = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            assert provider_phone(number) == parse_phone(number) == number, region
            assert provider_phone(number[1:]) == number, f"{region}: Meta's form, with no +"
            checked += 1
    assert checked > 300, "phonenumbers should give examples for most regions"


def test_a_written_number_in_e164_is_read_as_the_full_parse_reads_it():
    """The shortcut for written numbers of E.164 shape (an API's caller sends them) gives
    what the full parse gives, or the error it gives: for every example number of every
    region and type, the same with a national prefix after the country code, with a digit
    changed, one more or one less, and random numbers (a bounded loop)."""
    rnd = random.Random(7)
    written: set[str] = set()
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in phonenumbers.PhoneNumberType.values():
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            number = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            code, national = str(example.country_code), number[1 + len(str(example.country_code)) :]
            written |= {number, number + "5", number[:-1]}
            written |= {f"+{code}{prefix}{national}" for prefix in "0189"}
            for _ in range(5):
                at = rnd.randrange(len(national))
                written.add(f"+{code}{national[:at]}{rnd.randrange(10)}{national[at + 1 :]}")
    for _ in range(3000):
        written.add(f"+{rnd.randrange(1, 10)}{rnd.randrange(10**5, 10**14)}")

    def read(reader, text: str) -> str:
        try:
            return reader(text)
        except InvalidAddress as exc:
            return f"refused: {exc.reason}"

    differ = [
        text for text in sorted(written) if read(parse_phone, text) != read(parsed_phone, text)
    ]
    assert differ == [], differ[:5]
    accepted = sum(not read(parse_phone, text).startswith("refused") for text in written)
    assert len(written) > 8000 and accepted > 3000, "both kinds of number were tried"


def test_channels_and_phones():
    assert (Address("tel", CD).channel, Address("tel", CD).phone) == ("sms", CD)
    assert Address("whatsapp", CD).channel == "whatsapp"
    assert (Address("whatsapp-user", BSUID).channel, Address("whatsapp-user", BSUID).phone) == (
        "whatsapp",
        None,
    )


def test_provider_forms():
    assert twilio_to(Address("whatsapp", CD)) == f"whatsapp:{CD}"
    assert twilio_to(Address("tel", CD)) == CD
    assert recipient_fields(Address("whatsapp", CD)) == {"to": "243812345678"}
    assert recipient_fields(Address("tel", CD)) == {"to": "243812345678"}
    assert recipient_fields(Address("whatsapp-user", BSUID)) == {"recipient": BSUID}
    for unreachable in (Address("whatsapp-user", BSUID), Address("web", "abc:uic")):
        with pytest.raises(InvalidAddress):
            twilio_to(unreachable)
    with pytest.raises(InvalidAddress):
        recipient_fields(Address("web", "abc:uic"))


# -- fuzz: an Address or InvalidAddress, never anything else ------------------------------

ALPHABET = "0123456789+-. ()/٠٨۰۸０８:abcxyzUSENT\u2011\u00a0\t\n\ud800#;*,\x00é"
PREFIXES = ["", "", "tel:", "whatsapp:", "whatsapp-user:", "web:", "00", "+243", "US.", "0"]


def test_parse_address_only_returns_an_address_or_raises_invalid_address():
    rng = random.Random(20260301)
    valid = 0
    for _ in range(3000):
        body = "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 24)))
        text = rng.choice(PREFIXES) + body
        region = rng.choice([None, "CD", "FR", "US", "XX", "cd", ""])
        try:
            address = parse_address(text, region)
        except InvalidAddress:
            continue
        valid += 1
        assert isinstance(address, Address)
        assert parse_address(str(address)) == address, "a parsed address is canonical"
    assert valid > 0, "the fuzz loop must also reach valid addresses"


# -- PALABRE_DEFAULT_REGION ---------------------------------------------------------------


def test_the_default_region_is_read_upper_cased():
    assert Settings.from_env({"PALABRE_DEFAULT_REGION": " cd "}).default_region == "CD"
    assert Settings.from_env({}).default_region is None
    assert Settings.from_env({"PALABRE_DEFAULT_REGION": "Congo"}).default_region is None


def test_an_unknown_default_region_is_one_clear_line_at_start(tmp_path):
    lines = refused(tmp_path, base_env(PALABRE_DEFAULT_REGION="Congo"))
    assert lines == [
        "palabre: PALABRE_DEFAULT_REGION='Congo' is not a region code: use the two-letter "
        "ISO 3166 code of the country whose national numbers people write, such as CD, SN "
        "or FR"
    ]
