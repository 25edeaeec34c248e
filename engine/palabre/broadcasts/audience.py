"""A broadcast's audience, read from a CSV file a person exported from a spreadsheet.

The first line names the columns, in any case and order:
- `address` (or `phone`, `to`, `number`, `telephone`, `téléphone`): the number, national
  (read with PALABRE_DEFAULT_REGION) or international, or `whatsapp:+243...`;
- `language` (or `lang`, `langue`), optional: fr, ar, en...;
- any other column is a parameter of that line, read as `params.<column>` in the flow.

Commas, semicolons (spreadsheets in French) and tabs are all understood, and a UTF-8
byte-order mark is skipped. A line that cannot be sent is kept with the reason
(`invalid`, `duplicate`), so that the snapshot accounts for every line of the file and
the person can fix the lines named; the rest go on. No reason repeats the number.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from palabre.addresses import (
    PHONE_SCHEMES,
    TEL,
    WEB,
    WHATSAPP,
    Address,
    InvalidAddress,
    parse_address,
)
from palabre.errors import ConfigError

ADDRESS_COLUMNS = ("address", "phone", "to", "number", "telephone", "téléphone")
LANGUAGE_COLUMNS = ("language", "lang", "langue")
MAX_FILE_BYTES = 50 * 1024 * 1024  # about a million lines: larger audiences are split
MAX_CELL = 1000  # characters: a parameter is a name, a class, a date, a short message
INVALID, DUPLICATE, NO_CONSENT = "invalid", "duplicate", "no_consent"
DELIMITERS = (",", ";", "\t")
LINE_ENDS = re.compile(rb"\r\n|\r|\n")


@dataclass
class Recipient:
    """One line of the audience: whom to start the flow for, or why not (`skip`)."""

    line: int
    address: str = ""  # canonical (`tel:+243...`), "" when invalid
    contact_key: str | None = None
    language: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    skip: str | None = None  # invalid, duplicate, no_consent
    detail: str | None = None  # why, without the address


@dataclass
class Audience:
    """Every line of the file, in order, and the notes a person should read."""

    recipients: list[Recipient]
    notes: list[str]  # "contacts.csv:12: ..." lines

    @property
    def sendable(self) -> list[Recipient]:
        """The recipients with no reason to skip them."""
        return [r for r in self.recipients if r.skip is None]


def read_audience(
    path: Path,
    *,
    region: str | None,
    channel: str | None,
    languages: tuple[str, ...],
    key_of: Callable[[str], str],
) -> Audience:
    """Read the audience in `path`; ConfigError when the file itself cannot be read.

    `channel` ("whatsapp", "sms") sets every address's scheme; `languages` are the flow's;
    `key_of` is the contact key of an address (duplicates are found by it).
    """
    rows, columns = _rows(path)
    seen: dict[str, int] = {}
    audience = Audience([], [])
    for line, cells in rows:
        recipient = _recipient(line, cells, columns, region, channel)
        if recipient.skip is None:
            unknown = _unknown_language(recipient, languages, path)
            recipient.contact_key = key_of(recipient.address)
            first = seen.setdefault(recipient.contact_key, line)
            if first != line:
                recipient.skip, recipient.detail = DUPLICATE, f"the same contact as line {first}"
            elif unknown:
                audience.notes.append(unknown)
        if recipient.skip is not None:
            audience.notes.append(f"{path.name}:{line}: {recipient.skip}: {recipient.detail}")
        audience.recipients.append(recipient)
    return audience


class Columns:
    """Which column holds what, from the header line."""

    def __init__(self, header: list[str], path: Path) -> None:
        names = [name.strip().lower() for name in header]
        address = [i for i, name in enumerate(names) if name in ADDRESS_COLUMNS]
        if not address:
            # The cells are not repeated: a file without a header starts with a person's data.
            raise ConfigError(
                f"{path}:1: no address column among the {len(names)} columns of the first "
                f"line: it names the columns, one of them {', '.join(ADDRESS_COLUMNS)} "
                "(add that line if the file starts with data)"
            )
        self.address = address[0]
        language = [i for i, name in enumerate(names) if name in LANGUAGE_COLUMNS]
        self.language = language[0] if language else None
        taken = {self.address, self.language}
        self.params = {i: header[i].strip() for i in range(len(names)) if i not in taken}


def _rows(path: Path) -> tuple[Iterator[tuple[int, list[str]]], Columns]:
    text = _text(path)
    # Spreadsheets quote as `csv.excel` does ("" inside a cell); only the separator varies.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ConfigError(f"{path}: the file is empty (the first line names the columns)") from None
    except csv.Error as exc:
        raise ConfigError(f"{path}:1: {exc}") from None
    columns = Columns(header, path)

    def lines() -> Iterator[tuple[int, list[str]]]:
        start = reader.line_num + 1
        try:
            for cells in reader:
                if any(cell.strip() for cell in cells):
                    yield start, cells
                start = reader.line_num + 1
        except csv.Error as exc:  # a quote opened on `start` and never closed, say
            raise ConfigError(f"{path}:{start}: {exc} (a quote not closed?)") from None

    return lines(), columns


def _text(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_FILE_BYTES // 2**20} MB: split it")
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = len(LINE_ENDS.split(data[: exc.start]))  # \r alone ends a line too (old Macs)
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text (save the spreadsheet as 'CSV UTF-8')"
        ) from None


def _delimiter(text: str) -> str:
    """The separator of the header line: the most frequent of `,` `;` and tab."""
    header = text.splitlines()[0] if text else ""
    counts = {sep: header.count(sep) for sep in DELIMITERS}
    best = max(DELIMITERS, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _recipient(
    line: int, cells: list[str], columns: Columns, region: str | None, channel: str | None
) -> Recipient:
    recipient = Recipient(line)
    if any(len(cell) > MAX_CELL for cell in cells):
        recipient.skip, recipient.detail = INVALID, f"a cell is longer than {MAX_CELL} characters"
        return recipient
    raw = cells[columns.address] if columns.address < len(cells) else ""
    try:
        address = parse_address(raw, region)
    except InvalidAddress as exc:
        recipient.skip, recipient.detail = INVALID, f"the address: {exc.reason}"
        return recipient
    unreachable = _unreachable(address, channel)
    if unreachable:
        recipient.skip, recipient.detail = INVALID, unreachable
        return recipient
    if channel is not None and address.scheme in PHONE_SCHEMES:
        address = Address(WHATSAPP if channel == "whatsapp" else TEL, address.value)
    recipient.address = str(address)
    if columns.language is not None and columns.language < len(cells):
        recipient.language = cells[columns.language].strip().lower() or None
    recipient.params = {
        name: cells[i].strip() for i, name in columns.params.items() if i < len(cells)
    }
    return recipient


def _unreachable(address: Address, channel: str | None) -> str | None:
    """Why a broadcast cannot reach `address` on `channel`, or None."""
    if address.scheme == WEB:
        return "a web simulator contact cannot be reached outside its conversation"
    if channel == "sms" and address.scheme not in PHONE_SCHEMES:
        return "a WhatsApp user id has no phone number to send an SMS to"
    return None


def _unknown_language(recipient: Recipient, languages: tuple[str, ...], path: Path) -> str | None:
    """A note when the line's language is not the flow's (its default is used then)."""
    if recipient.language is None or recipient.language in languages:
        return None
    note = (
        f"{path.name}:{recipient.line}: language '{recipient.language}' is not one of the "
        f"flow's ({', '.join(languages)}): its default is used"
    )
    recipient.language = None
    return note
