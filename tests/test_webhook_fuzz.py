"""A bounded fuzz test: thousands of correctly signed, mutated bodies for every webhook.

Valid bodies, shaped like those of tests/meta_fakes.py and tests/twilio_fakes.py, are
mutated by a seeded `random.Random` (so every run sends the same bodies; a failure names
its webhook and index) and posted to ONE real `palabre serve` on loopback: Meta's
`POST /meta` signed with the app secret, Twilio's `POST /twilio` and `/twilio/status`
signed with twilio's RequestValidator, and the simulator's `POST /web/messages`. A body
may be answered 200 or refused with a 4xx; never a 5xx, and the server writes no
traceback.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from starlette.datastructures import ImmutableMultiDict
from tests.test_webhook_hardening import (
    PHONE_ID,
    PUBLIC,
    assert_no_traceback,
    meta_signed,
    palabre_serve,
    twilio_signature,
)

SEED = 20260701
BODIES_PER_WEBHOOK = 3000
Request = tuple[str, bytes, dict[str, str]]  # path, body, headers

WEIRD_TEXT = [
    "",
    " ",
    "\x00",
    "\u202e\u200f",
    "مرحبا ١٩٩٧",
    "😀\ufe0f",
    "\udfff",
    "\ud800x",
    "a" * 5000,
    "9" * 400,
    "-1",
    "NaN",
    "null",
    "whatsapp:",
    "+243810000001",
    "١٩٩٧",
    "\n\r\t",
    '"',
    "\\",
    "</Message><Message>",
    "{{ 7 * 7 }}",
    "{% for i in range(9) %}x{% endfor %}",
    "%s%n%x",
    "STOP",
    "1",
]


# -- mutating JSON documents ----------------------------------------------------------------------


def weird_text(rng: random.Random) -> str:
    if rng.random() < 0.7:
        text = rng.choice(WEIRD_TEXT)
    else:
        text = "".join(
            chr(rng.choice([rng.randrange(32, 0x250), rng.randrange(0x10FFFF)]))
            for _ in range(rng.randrange(1, 12))
        )
    if rng.random() < 0.15:  # a lone surrogate somewhere, as the audit sent
        at = rng.randrange(len(text) + 1)
        text = text[:at] + chr(rng.randrange(0xD800, 0xE000)) + text[at:]
    return text


def weird_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(10 if depth < 2 else 7)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 2**63, -(10**60), 10**70])
    if kind == 2:
        return rng.choice([1.5, -0.0, 1e308, 5e-324, 90.000001, float("nan"), float("inf")])
    if kind in (3, 4, 5, 6):
        return weird_text(rng)
    if kind == 7:
        return [weird_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 8:
        return {weird_text(rng): weird_value(rng, depth + 1) for _ in range(rng.randrange(4))}
    nested: Any = weird_value(rng, 2)
    for _ in range(rng.randrange(1, 90)):
        nested = [nested] if rng.random() < 0.5 else {"k": nested}
    return nested


def containers(document: Any) -> list[Any]:
    """Every dict and list in `document`, the document first."""
    found, pending = [], [document]
    while pending:
        item = pending.pop()
        if isinstance(item, dict | list):
            found.append(item)
            pending.extend(item.values() if isinstance(item, dict) else item)
    return found


def mutate_document(rng: random.Random, document: Any) -> None:
    """Change one thing somewhere in `document`, in place."""
    target = rng.choice(containers(document))
    action = rng.randrange(4)
    if isinstance(target, dict):
        keys = list(target)
        if action == 0 or not keys:
            target[weird_text(rng) if rng.random() < 0.3 else "type"] = weird_value(rng)
        elif action == 1:
            del target[rng.choice(keys)]
        else:
            target[rng.choice(keys)] = weird_value(rng)
    elif target:
        index = rng.randrange(len(target))
        if action == 0:
            target.append(json.loads(json.dumps(target[index])))  # a duplicate
        elif action == 1:
            del target[index]
        else:
            target[index] = weird_value(rng)
    else:
        target.append(weird_value(rng))


def serialise(rng: random.Random, document: Any) -> bytes:
    """JSON bytes; sometimes raw UTF-8 (lone surrogates as raw bytes), sometimes escaped."""
    if rng.random() < 0.5:
        return json.dumps(document).encode()
    return json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")


NUMBER = re.compile(rb"(?<=[:\[,] )-?[0-9]+(?:\.[0-9]+)?")


def mutate_bytes(rng: random.Random, body: bytes) -> bytes:
    """Damage the bytes themselves: flip, cut, insert, nest deep, swap in a huge number."""
    at = rng.randrange(len(body) + 1)
    action = rng.randrange(7)
    if action == 0 and body:
        flipped = body[min(at, len(body) - 1)] ^ (1 << rng.randrange(8))
        return body[:at] + bytes([flipped]) + body[at + 1 :]
    if action == 1:
        return body[:at]
    if action == 2:
        return body[:at] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6))) + body[at:]
    if action == 3:  # deeper than any parser's stack, unless refused first
        depth = rng.choice([100, 5000])
        return body[:at] + rng.choice([b"[", b'{"a":']) * depth + body[at:]
    if action == 4:
        return body[:at] + b"\xed\xbf\xbf" + body[at:]  # a lone surrogate, raw
    numbers = list(NUMBER.finditer(body))
    if action == 5 and numbers:  # more digits than Python converts
        number = rng.choice(numbers)
        return body[: number.start()] + b"7" * 5000 + body[number.end() :]
    return body[:at] + body[at : at + rng.randrange(64)] + body[at:]


def mutated_json(rng: random.Random, document: Any) -> bytes:
    for _ in range(rng.randrange(1, 4)):
        mutate_document(rng, document)
    body = serialise(rng, document)
    return mutate_bytes(rng, body) if rng.random() < 0.35 else body


# -- valid bodies, then mutated ------------------------------------------------------------------


def meta_message(rng: random.Random, i: int) -> dict[str, Any]:
    sender = f"24381{rng.randrange(40):07d}"
    base = {"from": sender, "id": f"wamid.FUZZ{i}", "timestamp": "1717000000"}
    kind = rng.choice(["text", "text", "interactive", "button", "image", "location", "reaction"])
    content: dict[str, Any] = {
        "text": {"body": rng.choice(["Bonjour", "Mbengue", "Ibrahima", "1997", "DA"])},
        "interactive": {"type": "list_reply", "list_reply": {"id": "1", "title": "Homme"}},
        "button": {"payload": "1", "text": "Homme"},
        "image": {"id": "2754859441498128", "mime_type": "image/jpeg", "caption": "x"},
        "location": {"latitude": -4.3, "longitude": 15.3},
        "reaction": {"message_id": "wamid.X", "emoji": "👍"},
    }[kind]
    return base | {"type": kind, kind: content}


def meta_document(rng: random.Random, i: int) -> dict[str, Any]:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": PHONE_ID},
    }
    if rng.random() < 0.8:
        value["messages"] = [meta_message(rng, i * 10 + n) for n in range(rng.randrange(1, 3))]
    else:
        error = [{"code": 131047, "title": "Re-engagement message"}]
        value["statuses"] = [
            {
                "id": f"wamid.S{i}",
                "status": "failed",
                "recipient_id": "243810000001",
                "errors": error,
            }
        ]
    change = {"value": value, "field": "messages"}
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]}


def meta_requests(rng: random.Random) -> Iterator[Request]:
    for i in range(BODIES_PER_WEBHOOK):
        body = mutated_json(rng, meta_document(rng, i))
        yield "/meta", body, meta_signed(body)


def simulator_requests(rng: random.Random) -> Iterator[Request]:
    for i in range(BODIES_PER_WEBHOOK):
        document = {
            "flow": "uic",
            "lang": rng.choice(["fr", "ar", "en"]),
            "session": f"fuzz-session-{rng.randrange(40):04d}",
            "text": rng.choice(["Bonjour", "Mbengue", "Ibrahima", "1997", "DA"]),
            "id": f"m{i}",
        }
        if rng.random() < 0.2:
            document["reply_id"] = rng.choice(["1", "2", "9"])
        yield "/web/messages", mutated_json(rng, document), {"Content-Type": "application/json"}


TWILIO_ODD = ["", "nan", "1e999", "-90.5", "11", "١", "99999999999999999999", "whatsapp:"]
SURROGATES = {code: None for code in range(0xD800, 0xE000)}
# Characters str.isdigit() accepts that are no ASCII digit: int() refuses some (², ①) and
# reads others (١, １). Twilio writes its numbers in ASCII digits only.
UNICODE_DIGITS = "²³¹⁰①١۴߂०１𝟙"
NUMERIC_FIELDS = ["NumMedia", "Latitude", "Longitude"]


def unicode_number(rng: random.Random) -> str:
    """A few digits, at least one of them not ASCII (`0²`, `١`, `1①5`...)."""
    digits = [rng.choice("0123456789" + UNICODE_DIGITS) for _ in range(rng.randrange(3))]
    digits.insert(rng.randrange(len(digits) + 1), rng.choice(UNICODE_DIGITS))
    return "".join(digits)


def twilio_params(rng: random.Random, i: int) -> list[tuple[str, str]]:
    if rng.random() < 0.15:
        status = rng.choice(["sent", "delivered", "read", "failed", "undelivered"])
        code = unicode_number(rng) if rng.random() < 0.3 else "63016"
        return [("MessageSid", f"SM{i:032d}"), ("MessageStatus", status), ("ErrorCode", code)]
    params = {
        "MessageSid": f"SM{i:032d}",
        "AccountSid": "AC" + "0" * 32,
        "From": f"whatsapp:+24381{rng.randrange(40):07d}",
        "To": "whatsapp:+14155238886",
        "Body": rng.choice(["Bonjour", "Mbengue", "Ibrahima", "1997", "DA", "1"]),
        "NumMedia": "0",
    }
    keys = [*params, "MediaUrl0", "Latitude", "Longitude", "ButtonPayload", "ButtonText"]
    for _ in range(rng.randrange(1, 4)):
        odd = rng.choice(TWILIO_ODD) if rng.random() < 0.4 else weird_text(rng)
        # Twilio cannot sign a lone surrogate: those are sent as raw bytes by mutate_bytes.
        params[rng.choice(keys)] = odd.translate(SURROGATES)
    if rng.random() < 0.15:
        params[rng.choice(NUMERIC_FIELDS)] = unicode_number(rng)
    return list(params.items())


def twilio_requests(rng: random.Random) -> Iterator[Request]:
    for i in range(BODIES_PER_WEBHOOK):
        pairs = twilio_params(rng, i)
        path = "/twilio/status" if pairs[1][0] == "MessageStatus" else "/twilio"
        body = urlencode(pairs).encode()
        if rng.random() < 0.35:
            body = mutate_bytes(rng, body)
        try:  # sign what the server will read, when it can read it at all
            signed = ImmutableMultiDict(parse_qsl(body.decode(), keep_blank_values=True))
        except ValueError:
            signed = ImmutableMultiDict(pairs)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": twilio_signature(PUBLIC + path, signed),
        }
        yield path, body, headers


# -- the test ------------------------------------------------------------------------------------


FUZZERS: dict[str, Callable[[random.Random], Iterator[Request]]] = {
    "meta": meta_requests,
    "twilio": twilio_requests,
    "simulator": simulator_requests,
}


def answer(client: httpx.Client, request: Request) -> int | str:
    """The status code, or why there was none (the server dropped the connection)."""
    path, body, headers = request
    try:
        return client.post(path, content=body, headers=headers).status_code
    except httpx.TransportError as exc:
        return f"no answer ({type(exc).__name__})"


def test_thousands_of_signed_mutated_bodies_never_get_a_5xx_or_a_traceback(tmp_path):
    answers: dict[str, Counter[int | str]] = {name: Counter() for name in FUZZERS}
    failures: list[str] = []
    with palabre_serve(tmp_path, PALABRE_LOG_LEVEL="WARNING") as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for name, requests in FUZZERS.items():
                rng = random.Random(f"{SEED}-{name}")
                for i, request in enumerate(requests(rng)):
                    status = answer(client, request)
                    answers[name][status] += 1
                    if not isinstance(status, int) or status >= 500:
                        failures.append(f"{name} #{i}: {status} for {request[1][:200]!r}")
        stderr = server.stop()
    assert not failures, f"{len(failures)} bodies failed:\n" + "\n".join(failures[:10])
    assert_no_traceback(stderr)
    for name, counts in answers.items():
        accepted = counts[200] + counts[204]
        refused = sum(counts.values()) - accepted
        assert accepted > 100 and refused > 100, f"{name}: the fuzz must reach both: {counts}"
