"""Pre-signed webhook requests for wrk: interleaved UIC conversations, in one file.

wrk's Lua cannot compute an HMAC, so every request is built and signed here before a
run, as raw HTTP/1.1 bytes that benchmarks/replay.lua loads at start and sends in order.
The file holds, for each request, its length in decimal, a newline, then its bytes.

The order (`schedule`): `slots` contacts talk at once, each slot sending one message per
tick, so a contact's next message comes `slots` requests after the previous one (with 32
connections and 1000 slots, never while it is still in flight). Slot s starts its first
contact at tick s % 6, so every tick holds the six UIC messages in equal shares and any
stretch of the file has the mix of whole conversations. Each message has its own id, and
each contact its own phone number: the caller gives every file a distinct `first`
contact number, so no run ever sees a returning person.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from twilio.request_validator import RequestValidator

UIC = ("Bonjour", "Mbengue", "Ibrahima", "1997", "DA", "1")
ACCOUNT_SID = "AC" + hashlib.sha256(b"bench-account").hexdigest()[:32]
TWILIO_TO = "whatsapp:+14155238886"
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
MAX_CONTACTS = 10**7  # seven free digits in the phone numbers


@dataclass(frozen=True)
class Message:
    """One message of the schedule: the contact's number, its step (0-5) and its text."""

    contact: int
    step: int
    text: str

    @property
    def phone(self) -> str:
        """The contact's phone number in E.164 (DR Congo mobile numbers, +24381...)."""
        if not 0 <= self.contact < MAX_CONTACTS:
            raise ValueError(f"contact numbers run from 0 to {MAX_CONTACTS - 1}")
        return f"+24381{self.contact:07d}"

    def message_id(self, prefix: str) -> str:
        """The message's own id: `prefix` and 32 digits (a Twilio SID is SM + 32 hex)."""
        return f"{prefix}{self.contact:031d}{self.step}"


def schedule(slots: int, per_slot: int, first: int = 0, distinct_codes: bool = False):
    """The messages of `slots * per_slot` conversations, interleaved (module docstring).

    Contact numbers run from `first`; `distinct_codes` gives each contact its own names
    (hence its own code and QR image) instead of the one UIC script."""
    ticks = per_slot * 6 + 5  # the last slots start 5 ticks late
    for tick in range(ticks):
        for slot in range(slots):
            done, step = divmod(tick - slot % 6, 6)
            if tick < slot % 6 or done >= per_slot:
                continue
            contact = first + done * slots + slot
            yield Message(contact, step, answer(contact, step, distinct_codes))


def answer(contact: int, step: int, distinct_codes: bool) -> str:
    """The contact's text at `step`: the UIC script, or with names drawn from its number."""
    if not distinct_codes or step not in (1, 2):
        return UIC[step]
    number = contact if step == 1 else contact // 26**3
    return "".join(chr(65 + number // 26**i % 26) for i in range(3)).capitalize()


Post = tuple[str, dict[str, str], bytes]  # path, headers, body


def twilio_request(message: Message, token: str, public_url: str) -> bytes:
    """A WhatsApp message webhook as Twilio posts it, as raw HTTP bytes."""
    return http_post(public_url, *twilio_post(message, token, public_url))


def meta_request(message: Message, app_secret: str, public_url: str) -> bytes:
    """A Cloud API message notification as Meta posts it, as raw HTTP bytes."""
    return http_post(public_url, *meta_post(message, app_secret))


def twilio_post(message: Message, token: str, public_url: str) -> Post:
    """A WhatsApp message webhook as Twilio posts it, signed for `public_url` + /twilio."""
    sid = message.message_id("SM")
    form = {
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ProfileName": "Bench",
        "MessageType": "text",
        "SmsSid": sid,
        "WaId": message.phone[1:],
        "SmsStatus": "received",
        "Body": message.text,
        "To": TWILIO_TO,
        "NumSegments": "1",
        "ReferralNumMedia": "0",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": f"whatsapp:{message.phone}",
        "ApiVersion": "2010-04-01",
    }
    url = public_url.rstrip("/") + "/twilio"
    signature = RequestValidator(token).compute_signature(url, form)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": signature,
        "I-Twilio-Idempotency-Token": sid,
    }
    return "/twilio", headers, urlencode(form).encode()


def meta_post(message: Message, app_secret: str) -> Post:
    """A Cloud API message notification as Meta posts it, with X-Hub-Signature-256."""
    wa_id = message.phone[1:]
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001234", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": "Bench"}, "wa_id": wa_id}],
        "messages": [
            {
                "from": wa_id,
                "id": message.message_id("wamid.HBgMMjQzODEw"),
                "timestamp": str(int(time.time())),  # the window counts from it
                "type": "text",
                "text": {"body": message.text},
            }
        ],
    }
    change = {"value": value, "field": "messages"}
    document = {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [change]}],
    }
    body = json.dumps(document, separators=(",", ":")).encode()
    digest = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}
    return "/meta", headers, body


def http_post(public_url: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """The raw bytes of an HTTP/1.1 POST (keep-alive) for `body`."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {urlsplit(public_url).netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def write_requests(path: Path, requests: Iterable[bytes]) -> int:
    """Write the requests in the format replay.lua reads; returns how many."""
    count = 0
    with path.open("wb") as file:
        for request in requests:
            file.write(b"%d\n" % len(request) + request)
            count += 1
    return count


def read_requests(path: Path) -> Iterator[bytes]:
    """The requests of a file written by `write_requests`, in order."""
    data = path.read_bytes()
    position = 0
    while position < len(data):
        newline = data.index(b"\n", position)
        size = int(data[position:newline])
        yield data[newline + 1 : newline + 1 + size]
        position = newline + 1 + size
