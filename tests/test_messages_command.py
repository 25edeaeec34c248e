"""`palabre messages`: the outbox listed by status, by contact, as a table or JSON Lines.

One real SQLite outbox is filled once for the module, by the real worker sending through
the Meta transport to a fake Graph API (tests/test_outbox's rig): a start that fails for
good, a reply that is sent, a broadcast skipped for want of consent, and two held rows
(an SMS contact's, and a WhatsApp number newer than `phonenumbers`' data). Every listing
is read from the `palabre` command run in a subprocess, as an operator runs it; no output
may hold an address or a message body.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.meta_fakes import graph_error
from tests.test_outbox import SECRET, Graph, outbox_settings, palabre, rig, run_palabre

from palabre.contacts import contact_hasher, contact_key
from palabre.outbox.listing import JSON_FIELDS, KNOWN_STATUSES, header, line_of
from palabre.outbox.rows import Queued, Row
from palabre.runtime.messages import Outbound

ALPHA = "whatsapp:+243810000001"  # a reply sent, then a broadcast skipped (no consent)
BRAVO = "whatsapp:+243810000002"  # a start that failed for good
CHARLIE = "tel:+243810000003"  # an SMS contact: one held row
DELTA = "whatsapp:+2438100000001"  # a number newer than phonenumbers' data: one held row
ADDRESSES = (ALPHA, BRAVO, CHARLIE, DELTA)
BODIES = ("alpha-answer", "alpha-news", "bravo-lost", "charlie-held", "delta-held")
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def key_of(address: str) -> str:
    """The contact key the engine gives `address` under the test deployment's secret."""
    return contact_key(contact_hasher(SECRET), address)


def queued(address: str, body: str, kind: str, transport: str = "meta_cloud", **options) -> Queued:
    message = Outbound(address, body, "fr", transport=transport)
    return Queued(message, key_of(address), kind, f"key-{body}", **options)


@dataclass(frozen=True)
class Outbox:
    """The filled outbox: its URL, each row's uid by its body, and its rows newest first."""

    url: str
    uids: dict[str, str]
    rows: list[Row]

    def row(self, body: str) -> Row:
        return next(row for row in self.rows if row.uid == self.uids[body])


async def _fill(url: str, tmp_path: Path) -> Outbox:
    graph = Graph()
    graph.answers.append((400, graph_error(131026, "(#131026) Message undeliverable")))
    uids: dict[str, str] = {}
    async with rig(url, outbox_settings(tmp_path), httpx.ASGITransport(app=graph.app)) as r:
        # One at a time, so that the refusal above meets the start it is meant for.
        for item in (
            queued(BRAVO, "bravo-lost", "start"),
            queued(ALPHA, "alpha-answer", "reply"),
            queued(ALPHA, "alpha-news", "broadcast"),
        ):
            [uids[item.message.text]] = await r.stores.outbox.enqueue([item])
            await r.worker().drain()
        held = [
            queued(CHARLIE, "charlie-held", "start", transport="twilio", held=True),
            queued(DELTA, "delta-held", "start", held=True),
        ]
        for item, uid in zip(held, await r.stores.outbox.enqueue(held), strict=True):
            uids[item.message.text] = uid
        rows = await r.stores.outbox.rows()
    return Outbox(url, uids, rows)


@pytest.fixture(scope="module")
def outbox(tmp_path_factory: pytest.TempPathFactory) -> Outbox:
    tmp_path = tmp_path_factory.mktemp("messages")
    url = f"sqlite+aiosqlite:///{tmp_path}/palabre.db"
    filled = asyncio.run(_fill(url, tmp_path))
    statuses = {body: filled.row(body).status for body in BODIES}
    assert statuses == {
        "bravo-lost": "failed",
        "alpha-answer": "sent",
        "alpha-news": "skipped",
        "charlie-held": "held",
        "delta-held": "held",
    }, "the worker should have left one row in each of these statuses"
    return filled


def messages(outbox: Outbox, *args: str, **env: str) -> str:
    """`palabre messages ARGS` on the filled outbox; its standard output, checked private."""
    listing = palabre("messages", *args, env={"DATABASE_URL": outbox.url, **env})
    assert_private(listing)
    return listing


def refused(*args: str, **env: str) -> str:
    """Run `palabre ARGS`, which must fail as a usage or setup error; its standard error."""
    done = run_palabre(*args, env=env)
    assert done.returncode == 2, f"exit status {done.returncode}: {done.stderr}"
    assert done.stdout == "", "nothing is listed when the command is refused"
    assert_private(done.stderr)
    return done.stderr


def assert_private(output: str) -> None:
    for address in ADDRESSES:
        number = address.partition(":+")[2]
        assert number not in output, "a listing never shows a phone number"
    for body in BODIES:
        assert body not in output, "a listing never shows a message body"


def uids_in(listing: str, outbox: Outbox) -> list[str]:
    """The bodies of the rows a table lists, in its order (found by their uids)."""
    by_uid = {uid: body for body, uid in outbox.uids.items()}
    return [by_uid[line.split()[1]] for line in listing.splitlines()[1:]]


# -- the table ------------------------------------------------------------------------------


def test_the_table_lists_every_row_newest_first_with_its_columns(outbox):
    listing = messages(outbox)
    assert listing.splitlines() == [header(), *(line_of(row) for row in outbox.rows)]
    assert uids_in(listing, outbox) == [
        "delta-held",
        "charlie-held",
        "alpha-news",
        "alpha-answer",
        "bravo-lost",
    ], "newest first"
    assert header().split()[:7] == ["time", "uid", "channel", "kind", "purpose", "status", "tries"]


def test_each_line_shows_time_in_utc_transport_kind_purpose_and_provider_id(outbox):
    listing = messages(outbox)
    sent = outbox.row("alpha-answer")
    line = line_of(sent)
    assert line in listing.splitlines()
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sent.created_at))
    assert line.split()[:7] == [when, sent.uid, "meta_cloud", "reply", "service", "sent", "0"]
    assert sent.provider_id and sent.provider_id.startswith("wamid.")
    assert sent.provider_id in line.split() and key_of(ALPHA) in line.split()
    for row_line in listing.splitlines()[1:]:
        assert ISO_UTC.fullmatch(row_line.split()[0]), f"not an ISO 8601 UTC time: {row_line}"
    news = line_of(outbox.row("alpha-news")).split()
    assert news[2:6] == ["meta_cloud", "broadcast", "broadcast", "skipped"]
    assert line_of(outbox.row("charlie-held")).split()[2] == "twilio"


def test_failed_still_lists_only_the_rows_that_need_a_look(outbox):
    listing = messages(outbox, "failed")
    assert uids_in(listing, outbox) == ["bravo-lost"], "skipped, sent and held need no look"
    line = line_of(outbox.row("bravo-lost"))
    assert line in listing.splitlines()
    provider_id, error = line.split()[8], line.partition(" 131026 ")[2]
    assert provider_id == "-" and error.startswith("undeliverable"), "code, then reason"


def test_limit_keeps_the_newest(outbox):
    assert uids_in(messages(outbox, "--limit", "2"), outbox) == ["delta-held", "charlie-held"]


# -- --status -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "bodies"),
    [
        ("skipped", ["alpha-news"]),
        ("sent", ["alpha-answer"]),
        ("failed", ["bravo-lost"]),
        ("held", ["delta-held", "charlie-held"]),
        ("delivered", []),
    ],
)
def test_status_lists_the_rows_in_that_status_only(outbox, status, bodies):
    assert uids_in(messages(outbox, "--status", status), outbox) == bodies


def test_a_skipped_row_shows_like_any_other_with_its_reason(outbox):
    listing = messages(outbox, "--status", "skipped")
    skipped = outbox.row("alpha-news")
    assert (skipped.error_code, skipped.attempts) == ("no_consent", 0)
    assert line_of(skipped) in listing.splitlines()
    assert "no_consent the contact has not given broadcast consent" in listing


def test_an_unknown_status_is_refused_naming_the_known_ones(outbox):
    error = refused("messages", "--status", "faild", DATABASE_URL=outbox.url)
    assert "argument --status: invalid choice" in error
    named = re.search(r"\(choose from (.*)\)", error)
    assert named, f"the refusal should list the known statuses: {error}"
    assert [name.strip("'") for name in named.group(1).split(", ")] == list(KNOWN_STATUSES)
    assert {"undelivered", "delivered", "read", "skipped", "unconfirmed"} <= set(KNOWN_STATUSES)


def test_failed_and_status_together_are_refused(outbox):
    error = refused("messages", "failed", "--status", "sent", DATABASE_URL=outbox.url)
    assert "not allowed with argument failed" in error


# -- --json ---------------------------------------------------------------------------------


def test_json_lines_parse_with_the_table_fields_and_times_as_numbers(outbox):
    listing = messages(outbox, "--json")
    objects = [json.loads(line) for line in listing.splitlines()]
    assert [o["uid"] for o in objects] == [row.uid for row in outbox.rows], "newest first"
    for found, row in zip(objects, outbox.rows, strict=True):
        assert tuple(found) == JSON_FIELDS
        assert found == {name: getattr(row, name) for name in JSON_FIELDS}
        assert isinstance(found["created_at"], float)
    failed = objects[-1]
    assert (failed["status"], failed["error_code"], failed["attempts"]) == ("failed", "131026", 1)
    assert failed["purpose"] == "service" and failed["kind"] == "start"
    assert objects[2]["purpose"] == "broadcast" and objects[2]["error_code"] == "no_consent"
    assert "address" not in JSON_FIELDS and "payload" not in JSON_FIELDS


def test_json_goes_with_the_filters(outbox):
    listing = messages(outbox, "failed", "--json")
    [only] = [json.loads(line) for line in listing.splitlines()]
    assert only["uid"] == outbox.uids["bravo-lost"]


# -- --contact ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "region", "bodies"),
    [
        (ALPHA, "", ["alpha-news", "alpha-answer"]),
        ("WhatsApp: +243 81 000 0001", "", ["alpha-news", "alpha-answer"]),
        (BRAVO, "", ["bravo-lost"]),
        ("+243810000003", "", ["charlie-held"]),  # a bare number is an SMS (tel:) address
        ("081-000-0003", "CD", ["charlie-held"]),  # national, read with the default region
        ("+243810000001", "", []),  # the tel: address of a WhatsApp-only contact
        (DELTA, "", ["delta-held"]),  # kept as the provider wrote it, as the engine does
    ],
)
def test_contact_finds_the_contacts_rows_by_address(outbox, written, region, bodies):
    listing = messages(outbox, "--contact", written, PALABRE_DEFAULT_REGION=region)
    assert uids_in(listing, outbox) == bodies


def test_contact_goes_with_failed_status_and_json(outbox):
    assert uids_in(messages(outbox, "failed", "--contact", BRAVO), outbox) == ["bravo-lost"]
    assert uids_in(messages(outbox, "failed", "--contact", ALPHA), outbox) == []
    skipped = messages(outbox, "--status", "skipped", "--contact", ALPHA, "--json")
    [only] = [json.loads(line) for line in skipped.splitlines()]
    assert (only["uid"], only["contact_key"]) == (outbox.uids["alpha-news"], key_of(ALPHA))


def test_contact_without_the_secret_says_so_and_exits_2(outbox):
    error = refused("messages", "--contact", ALPHA, DATABASE_URL=outbox.url, PALABRE_SECRET="")
    assert "--contact needs PALABRE_SECRET" in error
    assert "Traceback" not in error


def test_contact_that_is_no_address_is_refused_without_repeating_it(outbox):
    error = refused("messages", "--contact", "whatsapp:+24381000abc9", DATABASE_URL=outbox.url)
    assert error.startswith("palabre: --contact: not a valid address")
    assert "24381000abc9" not in error and "Traceback" not in error
