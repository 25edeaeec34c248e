"""A broadcast's audience (palabre.broadcasts.audience): the CSV a person exports, line by line."""

from __future__ import annotations

import hashlib
import itertools
import random
import re
from pathlib import Path

import pytest

from palabre.addresses import WEB, read_address
from palabre.broadcasts.audience import (
    ADDRESS_COLUMNS,
    DUPLICATE,
    INVALID,
    MAX_CELL,
    Audience,
    read_audience,
)
from palabre.errors import ConfigError

LANGUAGES = ("fr", "ar", "en")
CD = "+243812345678"
BSUID = "US.13491208655302741918"  # Meta's documented example


def contact_key(address: str) -> str:
    """A small stand-in for the engine's hashed contact key."""
    return "key-" + hashlib.sha256(address.encode()).hexdigest()[:16]


def write(tmp_path: Path, content: str | bytes, name: str = "contacts.csv") -> Path:
    path = tmp_path / name
    data = content if isinstance(content, bytes) else content.encode("utf-8")
    path.write_bytes(data)
    return path


def read(path: Path, *, channel: str | None = None) -> Audience:
    return read_audience(
        path, region="CD", channel=channel, languages=LANGUAGES, key_of=contact_key
    )


def read_text(tmp_path: Path, content: str | bytes, *, channel: str | None = None) -> Audience:
    return read(write(tmp_path, content), channel=channel)


def cd_number(n: int) -> str:
    """A distinct valid Congolese number, written nationally."""
    return f"08123{n:05d}"


# What a person's spreadsheet gives.


def test_a_french_spreadsheet_export_with_a_bom_and_semicolons_is_read(tmp_path):
    audience = read_text(
        tmp_path,
        "\ufefftéléphone;langue;Enfant;CLASSE\r\n"
        "0812345678; fr ;  Ana Mbuyi ; CM1 \r\n"
        "0812345679;AR;Yusuf;CM2\r\n",
    )
    first, second = audience.recipients
    assert first.line == 2, "the first data line is line 2 of the file"
    assert first.address == f"tel:{CD}", "a national number is read with the region CD"
    assert first.contact_key == contact_key(f"tel:{CD}"), "the contact key comes from key_of"
    assert first.language == "fr", "the language cell is stripped"
    assert first.params == {"Enfant": "Ana Mbuyi", "CLASSE": "CM1"}, (
        "params keep their header's spelling and case, and their values are stripped"
    )
    assert first.skip is None and first.detail is None, "a good line has no reason to skip"
    assert second.language == "ar", "a language written in capitals is matched"
    assert audience.notes == [], "a clean file leaves nothing for the person to read"
    assert audience.sendable == [first, second], "every line of a clean file is sendable"


@pytest.mark.parametrize("delimiter", [",", "\t"], ids=["comma", "tab"])
def test_comma_and_tab_separated_files_are_read_alike(tmp_path, delimiter):
    rows = [["phone", "lang", "name"], ["0812345678", "en", "Ana"], ["+243812345679", "", "Bo"]]
    audience = read_text(tmp_path, "".join(delimiter.join(row) + "\n" for row in rows))
    assert [r.address for r in audience.recipients] == [f"tel:{CD}", "tel:+243812345679"], (
        "both numbers are read whatever the delimiter"
    )
    assert [r.params for r in audience.recipients] == [{"name": "Ana"}, {"name": "Bo"}], (
        "the other column becomes a param"
    )
    assert [r.language for r in audience.recipients] == ["en", None], (
        "an empty language cell means the flow's default"
    )


def test_a_one_column_file_of_numbers_is_read(tmp_path):
    audience = read_text(tmp_path, "address\n0812345678\n+243 81 234 5679\n")
    assert [(r.line, r.address, r.params) for r in audience.recipients] == [
        (2, f"tel:{CD}", {}),
        (3, "tel:+243812345679", {}),
    ], "a file with only an address column gives one recipient a line, with no params"


@pytest.mark.parametrize("name", ADDRESS_COLUMNS)
def test_every_documented_address_column_name_is_understood(tmp_path, name):
    audience = read_text(tmp_path, f"{name.upper()},x\n0812345678,1\n")
    assert audience.recipients[0].address == f"tel:{CD}", f"'{name}' names the address column"


# Line numbers are the file's, so that a person can find the line.


def test_blank_lines_are_skipped_but_counted(tmp_path):
    audience = read_text(tmp_path, "address;name\n\n0812345678;Ana\n ; \n\n0812345679;Bo\n\n")
    assert [r.line for r in audience.recipients] == [3, 6], (
        "blank lines give no recipient, yet later lines keep the file's numbering"
    )


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_a_cell_spanning_two_lines_is_reported_where_its_record_starts(tmp_path, newline):
    lines = [
        "address,note",
        '0812345678,"first line',  # line 2: the record starts here...
        'second line"',  # ...and ends on line 3
        "",
        "0812",  # line 5: invalid
        "0812345679,after",  # line 6
    ]
    audience = read_text(tmp_path, newline.join(lines) + newline)
    assert [r.line for r in audience.recipients] == [2, 5, 6], (
        "a record is numbered by the line it starts on, and the lines after it are not shifted"
    )
    assert audience.recipients[0].params == {"note": f"first line{newline}second line"}, (
        "the quoted cell keeps its line break"
    )
    assert audience.notes == ["contacts.csv:5: invalid: the address: it is too short"], (
        "the note points at the file's line 5"
    )


# Lines that cannot be sent are kept, with a reason that never repeats the number.


def test_an_invalid_number_is_named_by_its_line_without_its_digits(tmp_path):
    audience = read_text(
        tmp_path,
        "address;name\n0812345678;Ana\n0812345679;Bo\n08123456789012;Cy\n0812345670;Di\n",
    )
    bad = audience.recipients[2]
    assert (bad.line, bad.skip, bad.address) == (4, INVALID, ""), (
        "the fourth line of the file is invalid and has no address"
    )
    assert bad.contact_key is None, "an invalid line has no contact"
    assert "08123456789012" not in bad.detail and not re.search(r"\d{4}", bad.detail), (
        "the reason does not repeat the number written"
    )
    assert audience.notes == [f"contacts.csv:4: invalid: {bad.detail}"], (
        "the note names the file and the line"
    )
    assert not re.search(r"\d{4}", audience.notes[0]), "the note does not repeat the number"
    assert [r.address for r in audience.sendable] == [
        f"tel:{CD}",
        "tel:+243812345679",
        "tel:+243812345670",
    ], "the lines before and after the invalid one are still read"


@pytest.mark.parametrize(
    ("written", "why"),
    [
        ("", "empty"),
        ("call me", "letters"),
        ("+999812345678", "country code"),
        ("mailto:someone@example.org", "scheme"),
    ],
)
def test_what_is_not_a_number_is_invalid_with_the_reason(tmp_path, written, why):
    audience = read_text(tmp_path, f"address,name\n{written},Ana\n")
    (recipient,) = audience.recipients
    assert recipient.skip == INVALID, f"{written!r} cannot be sent to"
    assert why in recipient.detail, f"the reason says why ({why})"


def test_a_row_shorter_than_the_header_without_an_address_is_invalid(tmp_path):
    audience = read_text(tmp_path, "name,address\nAna\n")
    assert audience.recipients[0].skip == INVALID, "a line with no address cell is invalid"
    assert audience.notes == ["contacts.csv:2: invalid: the address: it is empty"], (
        "the note says the address is missing"
    )


def test_the_same_person_written_twice_is_a_duplicate_of_the_first_line(tmp_path):
    audience = read_text(
        tmp_path, "address,name\n0812345678,Ana\n0812345679,Bo\n+243 81 234 5678,Ana again\n"
    )
    first, _, again = audience.recipients
    assert again.skip == DUPLICATE, "the second writing of the same number is a duplicate"
    assert again.detail == "the same contact as line 2", "the detail names the first line"
    assert again.contact_key == first.contact_key, "both lines are one contact"
    assert "5678" not in again.detail, "the detail does not repeat the number"
    assert audience.notes == ["contacts.csv:4: duplicate: the same contact as line 2"], (
        "the note names the duplicate's line and the first one"
    )
    assert audience.sendable == audience.recipients[:2], "the person is reached once"


def test_an_invalid_line_does_not_hide_a_later_duplicate(tmp_path):
    audience = read_text(tmp_path, "address\n0812\n0812345678\n0812345678\n")
    assert [(r.line, r.skip) for r in audience.recipients] == [
        (2, INVALID),
        (3, None),
        (4, DUPLICATE),
    ], "an invalid line is no contact, so the next valid one is the first"
    assert audience.recipients[2].detail == "the same contact as line 3", (
        "the duplicate points at the first valid line"
    )


# The channel sets the scheme, and refuses what it cannot reach.


def test_channel_whatsapp_turns_bare_numbers_into_whatsapp_addresses(tmp_path):
    audience = read_text(
        tmp_path, f"address\n0812345678\ntel:+243812345679\n{BSUID}\n", channel="whatsapp"
    )
    assert [r.address for r in audience.recipients] == [
        f"whatsapp:{CD}",
        "whatsapp:+243812345679",
        f"whatsapp-user:{BSUID}",
    ], "numbers go to WhatsApp; a WhatsApp user id stays one"


def test_channel_sms_turns_whatsapp_numbers_into_tel_and_refuses_user_ids(tmp_path):
    audience = read_text(
        tmp_path, f"address\nwhatsapp:+243812345678\n{BSUID}\n0812345679\n", channel="sms"
    )
    by_number, by_user_id, bare = audience.recipients
    assert by_number.address == f"tel:{CD}", "a WhatsApp number is texted at the same number"
    assert (by_user_id.skip, by_user_id.address) == (INVALID, ""), (
        "a WhatsApp user id has no number to text"
    )
    assert "WhatsApp user id" in by_user_id.detail, "the reason says it is a WhatsApp user id"
    assert BSUID not in by_user_id.detail, "the reason does not repeat the user id"
    assert bare.address == "tel:+243812345679", "a bare number is texted"


@pytest.mark.parametrize("channel", [None, "sms", "whatsapp"])
def test_a_web_simulator_contact_is_invalid_whatever_the_channel(tmp_path, channel):
    audience = read_text(tmp_path, "address\nweb:abc-123:uic\n0812345678\n", channel=channel)
    web, number = audience.recipients
    assert web.skip == INVALID, "a web contact cannot be reached by a broadcast"
    assert "web simulator" in web.detail, "the reason says it is a web simulator contact"
    assert number.skip is None, "the next line is still read"


def test_without_a_channel_each_address_keeps_its_scheme(tmp_path):
    audience = read_text(tmp_path, "address\nwhatsapp:+243812345678\n0812345679\n")
    assert [r.address for r in audience.recipients] == [f"whatsapp:{CD}", "tel:+243812345679"], (
        "with no channel, a bare number is tel: and a whatsapp: address stays whatsapp:"
    )


# Languages.


def test_an_unknown_language_is_noted_and_the_recipient_kept(tmp_path):
    audience = read_text(tmp_path, "address;language\n0812345678;Sw\n0812345679;EN\n")
    swahili, english = audience.recipients
    assert swahili.skip is None and swahili.language is None, (
        "the recipient is kept, with the flow's default language"
    )
    assert english.language == "en", "a language is matched whatever its case"
    assert audience.notes == [
        "contacts.csv:2: language 'sw' is not one of the flow's (fr, ar, en): its default is used"
    ], "the note names the line, the language written and the flow's languages"


# Cells.


def test_a_cell_longer_than_max_cell_makes_its_line_invalid(tmp_path):
    longest, too_long = "x" * MAX_CELL, "x" * (MAX_CELL + 1)
    audience = read_text(
        tmp_path, f"address,note\n0812345678,{longest}\n0812345679,{too_long}\n0812345670,ok\n"
    )
    fits, overflows, after = audience.recipients
    assert fits.params == {"note": longest}, f"a cell of {MAX_CELL} characters is kept"
    assert (overflows.skip, overflows.address) == (INVALID, ""), (
        f"a cell of {MAX_CELL + 1} characters makes its line invalid"
    )
    assert str(MAX_CELL) in overflows.detail, "the reason names the limit"
    assert audience.notes == [f"contacts.csv:3: invalid: {overflows.detail}"], (
        "the note names the line"
    )
    assert after.skip is None, "the line after is still read"


# Errors about the file itself.


def test_a_header_without_an_address_column_says_what_names_one(tmp_path):
    path = write(tmp_path, "Nom;Mobile;Classe\nAna;0812345678;CM1\n")
    with pytest.raises(ConfigError) as caught:
        read(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:1: no address column"), "the message points at line 1"
    assert "téléphone" in message, "the message lists the names an address column can have"
    assert "3 columns" in message, "the message says how many columns the first line has"


def test_a_file_with_no_header_line_is_refused_without_repeating_its_data(tmp_path):
    path = write(tmp_path, "0812345678;Ana Mbeki;CM1\n0812345679;Bo;CP\n")
    with pytest.raises(ConfigError) as caught:
        read(path)
    message = str(caught.value)
    assert "0812345678" not in message and "Mbeki" not in message, "no one's data in errors"
    assert "add that line" in message, "the message says what to do"


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf"], ids=["empty", "bom-only"])
def test_an_empty_file_is_refused(tmp_path, content):
    path = write(tmp_path, content)
    with pytest.raises(ConfigError, match="the file is empty") as caught:
        read(path)
    assert str(caught.value).startswith(str(path)), "the message names the file"


def test_a_non_utf8_file_names_the_line_of_the_bad_byte(tmp_path):
    latin1 = "address;nom\n0812345678;Ana\n\n0812345679;Zoé\n".encode("latin-1")
    path = write(tmp_path, latin1)
    with pytest.raises(ConfigError) as caught:
        read(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:4: not UTF-8"), "the message names line 4, with the é"
    assert "CSV UTF-8" in message, "the message says how to save the file"


def test_a_utf16_export_is_refused_as_not_utf8(tmp_path):
    path = write(tmp_path, "address\tnom\n0812345678\tAna\n".encode("utf-16"))
    with pytest.raises(ConfigError, match="CSV UTF-8"):
        read(path)


def test_a_missing_file_is_a_config_error(tmp_path):
    path = tmp_path / "nowhere.csv"
    with pytest.raises(ConfigError, match="cannot be read") as caught:
        read(path)
    assert str(caught.value).startswith(str(path)), "the message names the file"


# What a spreadsheet's quotes and an old Mac's line ends must not break.


def test_a_non_utf8_file_with_mac_line_endings_names_the_line_of_the_bad_byte(tmp_path):
    # Excel for Mac's "CSV (Macintosh)" ends lines with a lone \r.
    path = write(tmp_path, "address;nom\r0812345678;Ana\r0812345679;Zoé\r".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        read(path)
    assert str(caught.value).startswith(f"{path}:3:"), "the message names line 3, with the é"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('address,name\n0812345678,"Ana ""Nana"" B"\n', {"name": 'Ana "Nana" B'}),
        (
            'address;message\n0812345678;"Il a dit ""oui""; merci"\n',
            {"message": 'Il a dit "oui"; merci'},
        ),
        ('"address","name"\n0812345678,"Ana ""Nana"" B"\n', {"name": 'Ana "Nana" B'}),
    ],
    ids=["comma", "semicolon-inside", "quoted-header"],
)
def test_a_quote_inside_a_cell_is_read_as_spreadsheets_write_it(tmp_path, content, expected):
    # Excel, LibreOffice and Google Sheets all write " inside a cell as "" in a quoted cell.
    audience = read_text(tmp_path, content)
    assert audience.recipients[0].params == expected, "the cell reads as the person typed it"


def test_an_unclosed_quote_does_not_hide_the_lines_after_it(tmp_path):
    path = write(tmp_path, 'address,name\n0812345678,"Ana\n0812345679,Bo\n0812345670,Cy\n')
    try:
        audience = read(path)
    except ConfigError as error:
        assert f"{path}:2:" in str(error), "the error points at the line with the open quote"
        return
    accounted = {r.line for r in audience.recipients} | {
        int(note.split(":")[1]) for note in audience.notes
    }
    assert {3, 4} <= accounted, "lines 3 and 4 are accounted for, not lost inside line 2's cell"


# Hostile input: a ConfigError or a well-formed audience, never anything else.

HEADER = "address;langue;name\n"
PIECES = [
    "0812345678",
    "+243 81 234 5679",
    "whatsapp:+243812345670",
    BSUID,
    "web:a:b",
    "0812",
    "fr",
    "AR",
    "xx",
    ";",
    ",",
    "\t",
    '"',
    "'",
    '""',
    "\n",
    "\r\n",
    "\r",
    "\x00",
    "\ufeff",
    "\u2028",
    " ",
    "é",
    "٠٨١٢٣٤٥٦٧٨",
    "①②",
    "²",
    "𝟘𝟠",
    "\ud7ff",
    "tel:",
    "whatsapp-user:",
    "+",
]


def random_text(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randrange(1, 40)):
        roll = rng.random()
        if roll < 0.03:
            parts.append(rng.choice("xé\"'") * rng.choice([MAX_CELL + 1, 3000]))
        elif roll < 0.2:
            parts.append("".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(8))))
        else:
            parts.append(rng.choice(PIECES))
    return "".join(parts)


def random_cell(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.4:  # a few numbers, so that duplicates happen
        return rng.choice([cd_number(n) for n in range(4)] + ["+243 81 230 0001", BSUID])
    if roll < 0.6:
        return rng.choice(["fr", "AR", " en ", "sw", ""])
    if roll < 0.7:  # a properly quoted cell, with a quote or a line break inside
        return '"' + random_text(rng).replace('"', '""') + '"'
    return random_text(rng)[: rng.choice([5, 50, 2000])]


def random_rows(rng: random.Random, delimiter: str) -> str:
    """Rows that mostly look like a spreadsheet's, with damage here and there."""
    rows = []
    for _ in range(rng.randrange(12)):
        separator = delimiter if rng.random() < 0.9 else rng.choice(",;\t")
        cells = [random_cell(rng) for _ in range(rng.randrange(1, 5))]
        rows.append(separator.join(cells) + rng.choice(["\n", "\r\n", "\r", "\n\n"]))
    if rng.random() < 0.02:  # beyond the csv module's own field limit (131072)
        rows.append(f"0812345678{delimiter}{'x' * 140_000}\n")
    return "".join(rows)


def check_audience(audience: Audience, path: Path) -> None:
    lines = [r.line for r in audience.recipients]
    assert all(a < b for a, b in itertools.pairwise(lines)), (
        f"line numbers increase strictly: {lines}"
    )
    assert all(line >= 2 for line in lines), "no recipient comes from the header line"
    keys = set()
    for r in audience.recipients:
        assert r.skip in (None, INVALID, DUPLICATE), f"line {r.line}: an unknown skip reason"
        if r.skip == INVALID:
            assert r.address == "" and r.detail, f"line {r.line}: invalid, with a reason"
        else:
            assert str(read_address(r.address)) == r.address, f"line {r.line}: canonical address"
            assert not r.address.startswith(f"{WEB}:"), f"line {r.line}: no web contact is sent to"
            assert r.contact_key == contact_key(r.address), f"line {r.line}: key from key_of"
            assert r.language is None or r.language in LANGUAGES, f"line {r.line}: a known language"
        if r.skip is None:
            assert r.contact_key not in keys, f"line {r.line}: each contact is sendable once"
            keys.add(r.contact_key)
        else:
            assert f"{path.name}:{r.line}: {r.skip}: {r.detail}" in audience.notes, (
                f"line {r.line}: a skipped line is noted"
            )


def read_hostile(path: Path, channel: str | None) -> None:
    try:
        audience = read(path, channel=channel)
    except ConfigError as error:
        assert str(error).startswith(str(path)), "a file error names the file"
        return
    check_audience(audience, path)


def test_random_bytes_under_a_valid_header_never_crash(tmp_path):
    rng = random.Random(20240611)
    path = tmp_path / "contacts.csv"
    for _ in range(300):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(200)))
        if rng.random() < 0.5:  # mostly-valid UTF-8 with a few raw bytes mixed in
            body = random_text(rng).encode("utf-8") + body[: rng.randrange(3)]
        path.write_bytes(HEADER.encode() + body)
        read_hostile(path, rng.choice([None, "sms", "whatsapp"]))


def test_random_csv_text_under_a_valid_header_never_crashes(tmp_path):
    rng = random.Random(7)
    path = tmp_path / "contacts.csv"
    headers = [(HEADER, ";"), ("\ufeffphone,lang,name\r\n", ","), ("to\tlanguage\n", "\t")]
    headers.append(("address\n", ","))
    for _ in range(300):
        header, delimiter = rng.choice(headers)
        body = random_rows(rng, delimiter) if rng.random() < 0.8 else random_text(rng)
        path.write_text(header + body, encoding="utf-8")
        read_hostile(path, rng.choice([None, "sms", "whatsapp"]))


def test_random_header_lines_never_crash(tmp_path):
    rng = random.Random(3)
    path = tmp_path / "contacts.csv"
    names = ["address", "Téléphone", "LANG", "name", "", "to", '"phone"']
    for _ in range(300):
        header = random_text(rng)[:120] if rng.random() < 0.5 else ""
        header += rng.choice(";,\t").join(rng.sample(names, rng.randrange(1, 4)))
        rows = "".join(f"{cd_number(n)};fr;x\n" for n in range(rng.randrange(3)))
        path.write_text(header + "\n" + rows, encoding="utf-8")
        read_hostile(path, None)
