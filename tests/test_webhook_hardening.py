"""Bodies that must never hurt a real `palabre serve`: huge ones, and signed malformed ones.

Every test here talks to a real server process on loopback (tests/serving.py) with real
secrets, Meta, Twilio and the web simulator all on. A body over its endpoint's cap gets a
413 while it streams in, and the server's memory stays flat; a correctly signed body that
Palabre cannot use gets a 4xx, never a 5xx, and the server writes no traceback.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from tests.conftest import LiveServer
from tests.serving import Served, start_serve
from twilio.request_validator import RequestValidator

from palabre.web.body import MalformedBody, parse_json

APP_SECRET = "hardening-meta-app-secret-0123456789"
TWILIO_TOKEN = "hardening-twilio-token-0123456789ab"
PUBLIC = "https://bot.example.org"
PHONE_ID = "106540352242922"
SENDER = "243810000001"
MB = 1024 * 1024


def server_env(graph_url: str) -> dict[str, str]:
    """Every transport configured for real, so signatures are checked everywhere."""
    return {
        "PALABRE_SECRET": "5f" * 32,
        "PALABRE_PUBLIC_URL": PUBLIC,
        "PALABRE_SIMULATOR": "true",
        "PALABRE_LOG_LEVEL": "INFO",
        "META_APP_SECRET": APP_SECRET,
        "META_ACCESS_TOKEN": "EAAhardening-access-token-0123456789",
        "META_VERIFY_TOKEN": "hardening-verify-token-0123456789",
        "META_PHONE_NUMBER_ID": PHONE_ID,
        "META_API_BASE": graph_url,
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    }


@dataclass
class Running:
    """A `palabre serve` (whose stderr tests/serving.py drains as it comes)."""

    served: Served

    @property
    def url(self) -> str:
        return self.served.url

    def rss_mb(self) -> float:
        """The server process's resident memory, from /proc."""
        status = Path(f"/proc/{self.served.process.pid}/status").read_text()
        kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(kb) / 1024

    def stop(self) -> str:
        """Stop the server; everything it wrote to stderr."""
        return self.served.stop()


@contextmanager
def palabre_serve(data_dir: Path, **env: str) -> Iterator[Running]:
    """A real server; its Graph API refuses every send at once (404, no retry)."""
    with LiveServer(Starlette()) as graph:
        running = Running(start_serve(data_dir, server_env(graph.url) | env))
        try:
            yield running
        finally:
            running.stop()


def assert_no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, f"the server wrote a traceback:\n{stderr[-3000:]}"
    assert "Exception in ASGI application" not in stderr, stderr[-3000:]


def meta_signed(body: bytes) -> dict[str, str]:
    """The headers Meta sends with `body`: its HMAC-SHA256 over the raw bytes."""
    digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}


def meta_text(sender: str = SENDER, wamid: str = "wamid.H1", body: str = "Bonjour") -> str:
    """A notification with one text message, as JSON text (escapes kept as written)."""
    message = {"from": sender, "id": wamid, "timestamp": "1717000000", "type": "text"}
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": PHONE_ID},
        "messages": [message | {"text": {"body": body}}],
    }
    change = {"value": value, "field": "messages"}
    document = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]}
    return json.dumps(document)


def twilio_signature(url: str, params: dict[str, str]) -> str:
    """Twilio's X-Twilio-Signature, computed as twilio's RequestValidator does."""
    return RequestValidator(TWILIO_TOKEN).compute_signature(url, params)


# -- the JSON reader's bounds, on their own ----------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
        (b"[" * 65 + b"]" * 65, "nested deeper"),
        (b'{"n": ' + b"1" * 5000 + b"}", "integer longer"),
        (b'{"n": -' + b"1" * 65 + b"}", "integer longer"),
        (b'{"n": NaN}', "NaN"),
        (b'{"n": -Infinity}', "-Infinity"),
        (b'{"n": 1e400}', "too large"),
        (b'{"from": "\\udfff"}', "lone surrogate"),
        (b'{"\\ud800x": 1}', "lone surrogate"),
        (b'{"from": "\xed\xbf\xbf"}', "not UTF-8"),
        (b'{"a": 1', "not JSON"),
        (b'"\\"' * 1000, "not JSON"),
    ],
    ids=lambda value: None if isinstance(value, str) else f"{value[:12]!r}({len(value)})",
)
def test_the_json_reader_refuses_what_would_crash_or_corrupt(body, reason):
    with pytest.raises(MalformedBody) as refused:
        parse_json(body)
    assert reason in refused.value.reason
    assert refused.value.status_code == 400


def test_the_json_reader_keeps_what_is_valid():
    body = '{"a": "[[[[ {{{{ \\" ]]", "e": "\\ud83d\\ude00", "n": -12, "f": 1.5}'
    assert parse_json(body.encode()) == {"a": '[[[[ {{{{ " ]]', "e": "😀", "n": -12, "f": 1.5}
    assert parse_json(b"[" * 64 + b"]" * 64), "64 levels are allowed"
    brackets = b'{"a": "' + b"[{" * 100 + b'", "b": [[1]]}'
    assert parse_json(brackets) == {"a": "[{" * 100, "b": [[1]]}, "brackets in a string"


# -- item 2: bodies over the cap, streamed, never held ------------------------------------------


def stream(total: int, chunk: int = MB) -> Iterator[bytes]:
    block = b"x" * chunk
    for _ in range(total // chunk):
        yield block


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with palabre_serve(tmp_path_factory.mktemp("hardening")) as running:
        yield running


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize(
    ("path", "content_type", "size"),
    [
        ("/meta", "application/json", 200 * MB),
        ("/twilio", "application/x-www-form-urlencoded", 200 * MB),
        ("/web/messages", "application/json", 50 * MB),
    ],
)
def test_an_oversized_unsigned_body_is_refused_413_and_memory_stays_flat(
    server, path, content_type, size, declared
):
    headers = {"Content-Type": content_type}
    if declared:
        headers["Content-Length"] = str(size)
    before = server.rss_mb()
    with httpx.Client(base_url=server.url, timeout=120) as client:
        response = client.post(path, content=stream(size), headers=headers)
        assert response.status_code == 413, response.text
        grown = server.rss_mb() - before
        assert grown < 50, f"{path} held the body: the server grew by {grown:.0f} MB"
        assert client.get("/healthz").text == "ok", "the server still answers afterwards"


# -- item 3: signed bodies Palabre cannot use -----------------------------------------------------


def malformed_meta_bodies() -> dict[str, bytes]:
    """Correctly signed bodies that crashed the server with a 500 before."""
    deep = '{"object": "whatsapp_business_account", "entry": ' + "[" * 100_000 + "]" * 100_000
    return {
        "deep nesting": (deep + "}").encode(),
        "huge integer": meta_text().replace('"1717000000"', "1" + "0" * 5000).encode(),
        "lone surrogate in from, escaped": meta_text(sender="\udfff").encode(),
        "lone surrogate in the message id": meta_text(wamid="wamid.\udfff").encode(),
        "lone surrogate in from, raw bytes": meta_text(sender="SENDER")
        .encode()
        .replace(b"SENDER", b"\xed\xbf\xbf"),
        "lone surrogate in the text": meta_text(body="\ud800 hi").encode(),
        "NaN": meta_text().replace('"1717000000"', "NaN").encode(),
    }


def test_signed_meta_bodies_that_cannot_be_used_get_400_and_no_traceback(tmp_path):
    with palabre_serve(tmp_path) as server, httpx.Client(base_url=server.url) as client:
        answers = {
            name: client.post("/meta", content=body, headers=meta_signed(body)).status_code
            for name, body in malformed_meta_bodies().items()
        }
        fine = meta_text(wamid="wamid.FINE").encode()
        after = client.post("/meta", content=fine, headers=meta_signed(fine)).status_code
        stderr = server.stop()
    assert answers == dict.fromkeys(answers, 400)
    assert after == 200, "a good body is still answered"
    assert_no_traceback(stderr)


def test_simulator_bodies_that_cannot_be_used_get_400_or_413_and_no_traceback(tmp_path):
    base = {"flow": "uic", "lang": "fr", "session": "abcdefgh-1234"}
    bodies = {
        "deep nesting": b"[" * 10_000 + b"]" * 10_000,  # under the cap, over any stack
        "huge integer": json.dumps(base | {"text": "x"})[:-1] + ', "n": ' + "1" * 5000 + "}",
        "lone surrogate in the text": json.dumps(base | {"text": "\udfff"}),
        "lone surrogate in the session": json.dumps(base | {"session": "abcdefgh\udfff"}),
    }
    with palabre_serve(tmp_path) as server, httpx.Client(base_url=server.url) as client:
        answers = {
            name: client.post("/web/messages", content=body).status_code
            for name, body in bodies.items()
        }
        big = client.post("/web/messages", content=b"[" + b" " * 50 * MB + b"]")
        stderr = server.stop()
    assert answers == dict.fromkeys(answers, 400)
    assert big.status_code == 413
    assert_no_traceback(stderr)


def test_twilio_never_lets_a_lone_surrogate_in(tmp_path):
    url = f"{PUBLIC}/twilio"
    params = {
        "MessageSid": "SM" + "1" * 32,
        "AccountSid": "AC" + "0" * 32,
        "From": "whatsapp:+243810000001",
        "To": "whatsapp:+14155238886",
        "Body": "Bonjour",
        "NumMedia": "0",
    }
    form = httpx.QueryParams(params)
    percent = str(form).replace("Bonjour", "%ED%BF%BF").encode()
    raw = str(form).replace("Bonjour", "SURROGATE").encode().replace(b"SURROGATE", b"\xed\xbf\xbf")
    # Signed as Twilio would sign them if it could encode them (UTF-8 with surrogatepass).
    signed = surrogate_signature(url, params | {"Body": "\udfff"})
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signed}
    with palabre_serve(tmp_path) as server, httpx.Client(base_url=server.url) as client:
        answers = [client.post("/twilio", content=body, headers=headers) for body in (percent, raw)]
        good = client.post(
            "/twilio",
            data=params,
            headers={"X-Twilio-Signature": twilio_signature(url, params)},
        )
        stderr = server.stop()
    for answer in answers:
        assert answer.status_code == 400 and "UTF-8" in answer.text, answer.text
    assert good.status_code == 200 and "<Message" in good.text, "a good body is still answered"
    assert_no_traceback(stderr)


def surrogate_signature(url: str, params: dict[str, Any]) -> str:
    """RequestValidator's algorithm (HMAC-SHA1 of the URL and the sorted parameters,
    base64), with surrogates encoded as they are rather than refused."""
    import base64

    text = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(TWILIO_TOKEN.encode(), text.encode("utf-8", "surrogatepass"), "sha1")
    return base64.b64encode(digest.digest()).decode()
