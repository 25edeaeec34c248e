"""The webhook benchmark's request files (benchmarks/requests_file.py): order, signatures,
format. Pure helpers only: no server runs and nothing is timed here."""

from __future__ import annotations

import hashlib
import hmac
import itertools
from collections import Counter, defaultdict
from urllib.parse import parse_qsl

from benchmarks.requests_file import (
    UIC,
    Message,
    meta_request,
    read_requests,
    schedule,
    twilio_request,
    write_requests,
)
from twilio.request_validator import RequestValidator

TOKEN = "0123456789abcdef" * 2
PUBLIC = "https://bench.example.org"


def split(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    request_line, *lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return request_line, headers, body


def test_each_contact_says_the_uic_script_in_order_with_its_messages_far_apart():
    slots = 60
    messages = list(schedule(slots, per_slot=3, first=1000))
    places = defaultdict(list)
    for place, message in enumerate(messages):
        places[message.contact].append((place, message.step, message.text))
    assert len(places) == slots * 3, "every conversation is a contact of its own"
    assert min(places) == 1000, "contact numbers start at `first`"
    for said in places.values():
        assert [text for _, _, text in said] == list(UIC), "the whole script, in order"
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(said)]
        assert min(gaps) >= slots // 6, "never two messages of a contact close together"


def test_once_every_slot_has_started_each_stretch_holds_every_step_equally():
    slots = 60
    messages = list(schedule(slots, per_slot=4))
    steady = messages[slots * 5 : slots * 6]  # tick 5: every slot talks
    assert Counter(message.step for message in steady) == {step: slots // 6 for step in range(6)}


def test_distinct_codes_give_each_contact_its_own_names():
    messages = [m for m in schedule(60, per_slot=2, distinct_codes=True) if m.step in (1, 2)]
    names = {(m.contact, m.step): m.text for m in messages}
    pairs = {(names[c, 1], names[c, 2]) for c, _ in names}
    assert len(pairs) == 120, "every contact's last and first name pair differs"


def test_a_twilio_request_is_signed_for_the_public_url_and_names_its_message():
    message = Message(contact=42, step=3, text=UIC[3])
    request_line, headers, body = split(twilio_request(message, TOKEN, PUBLIC))
    form = dict(parse_qsl(body.decode(), keep_blank_values=True))
    assert request_line == "POST /twilio HTTP/1.1"
    assert int(headers["Content-Length"]) == len(body)
    validator = RequestValidator(TOKEN)
    assert validator.validate(PUBLIC + "/twilio", form, headers["X-Twilio-Signature"])
    assert form["Body"] == "1997" and form["From"] == "whatsapp:+243810000042"
    assert form["MessageSid"] == message.message_id("SM") and len(form["MessageSid"]) == 34


def test_a_meta_request_carries_the_hmac_of_its_exact_body():
    secret = "s" * 32
    request_line, headers, body = split(meta_request(Message(7, 0, UIC[0]), secret, PUBLIC))
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert request_line == "POST /meta HTTP/1.1"
    assert headers["X-Hub-Signature-256"] == expected
    assert b'"from":"243810000007"' in body and b'"body":"Bonjour"' in body


def test_a_request_file_gives_back_the_same_requests_in_order(tmp_path):
    requests = [b"POST / HTTP/1.1\r\n\r\n", b"", b"body with\nnewlines\r\n" * 3]
    path = tmp_path / "requests.bin"
    assert write_requests(path, iter(requests)) == 3
    assert list(read_requests(path)) == requests
