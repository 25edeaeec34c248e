"""What the Twilio tests share: a fake Twilio, signed webhooks, and the apps under test.

Signatures are computed with twilio's own RequestValidator, exactly as Twilio signs.
`FakeTwilio` is Twilio's Messages.json resource (a small Starlette app) speaking the
documented request and answers; Palabre's HTTP client reaches it through
`httpx.ASGITransport`, with no socket. The webhook tests serve Palabre for real on
loopback and post to it as Twilio does.

Also the fixtures (`server`, `fake_twilio`) the tests import.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.conftest import uic_plugins
from twilio.request_validator import RequestValidator

import palabre_twilio
from palabre.config import Settings
from palabre.hookspecs import hookimpl
from palabre.plugins import make_plugin_manager
from palabre.web.app import create_app
from palabre_twilio import TwilioTransport

UIC = Path(__file__).parent.parent / "flows" / "uic.yaml"
TOKEN = "twilio-test-auth-token"
ACCOUNT = "AC" + "1" * 32
PHONE = "+243810000001"  # as Twilio writes an SMS sender
TEL = f"tel:{PHONE}"  # its canonical address
WHATSAPP = f"whatsapp:{PHONE}"
SMS_FROM = "+15005550006"
WHATSAPP_FROM = "whatsapp:+14155238886"
ANSWERS = ["Mbengue", "Ibrahima", "1997", "DA", "1"]
PUBLIC = "https://bot.example.org"
API_BASE = "http://twilio.test"  # TWILIO_API_BASE: FakeTwilio, reached without a socket


# -- building apps ----------------------------------------------------------------------


def settings_for(tmp_path: Path, *, token: str | None = TOKEN, **options: str) -> Settings:
    secrets = {"PALABRE_SECRET": "x"} | ({"TWILIO_AUTH_TOKEN": token} if token else {})
    public_url = options.pop("PALABRE_PUBLIC_URL", None)
    base = {
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "TWILIO_SMS_FROM": SMS_FROM,
        "TWILIO_WHATSAPP_FROM": WHATSAPP_FROM,
    }
    return Settings(
        data_dir=tmp_path / "data",
        public_url=public_url,
        secrets=secrets,
        options=base | options,
    )


class Serves:
    """A plugin that registers one given transport, so a test can call its `send`."""

    def __init__(self, transport: TwilioTransport) -> None:
        self.transport = transport

    @hookimpl
    def register_transports(self) -> list[TwilioTransport]:
        return [self.transport]


def app_for(settings: Settings, transport: TwilioTransport | None = None, **options):
    # Only the built-ins, DHIS-2 (the UIC flow's settings.dhis2) and Twilio: other
    # transports have their own secrets and tests.
    plugin = Serves(transport) if transport else palabre_twilio
    manager = make_plugin_manager(uic_plugins(plugin), entry_points=False)
    return create_app([UIC], settings, plugins=manager, **options)


# -- signed webhooks in -------------------------------------------------------------------


def sign(url: str, params: dict[str, str], token: str = TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


def webhook(text: str = "", contact: str = WHATSAPP, **extra: str) -> dict[str, str]:
    """The parameters of an inbound message webhook, as Twilio posts them."""
    to = WHATSAPP_FROM if contact.startswith("whatsapp:") else SMS_FROM
    params = {
        "MessageSid": "SM" + uuid.uuid4().hex,
        "AccountSid": ACCOUNT,
        "From": contact,
        "To": to,
        "Body": text,
        "NumMedia": "0",
        "ProfileName": "Ibrahima",
    }
    return params | extra


def status(sid: str, state: str, to: str = WHATSAPP, **extra: str) -> dict[str, str]:
    """The parameters of a status callback, as Twilio posts them."""
    params = {"MessageSid": sid, "MessageStatus": state, "SmsStatus": state, "To": to}
    return (
        params | {"From": WHATSAPP_FROM, "AccountSid": ACCOUNT, "ApiVersion": "2010-04-01"} | extra
    )


def post(
    base: str, params: dict[str, str], path: str = "/twilio", signed_url: str | None = None
) -> httpx.Response:
    """POST `params` to the server, signed for `signed_url` (default: the URL called)."""
    url = base + path
    headers = {"X-Twilio-Signature": sign(signed_url or url, params)}
    return httpx.post(url, data=params, headers=headers, timeout=20)


def messages(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith("application/xml")
    return [m.text or "" for m in ET.fromstring(response.content).iter("Message")]


def converse(base: str, texts: list[str], contact: str = WHATSAPP) -> list[list[str]]:
    return [messages(post(base, webhook(text, contact))) for text in texts]


@pytest.fixture
def server(live_server, tmp_path):
    with live_server(app_for(settings_for(tmp_path))) as running:
        yield running


# -- a fake Twilio REST API out -------------------------------------------------------------


INVALID_NUMBER = "+15005550001"  # Twilio's own test number for "invalid To"
BUSY_NUMBER = "+15005550009"
BROKEN_NUMBER = "+15005550010"


class FakeTwilio:
    """Twilio's Messages.json resource, as documented: form in, 201 JSON or error JSON out."""

    def __init__(self) -> None:
        self.url = API_BASE  # TWILIO_API_BASE for an app whose client comes from client()
        self.requests: list[dict] = []
        self.sids: list[str] = []
        path = "/2010-04-01/Accounts/{account}/Messages.json"
        self.app = Starlette(routes=[Route(path, self.create, methods=["POST"])])

    def client(self) -> httpx.AsyncClient:
        """An HTTP client for Palabre that reaches this fake in-process (no socket, so
        nothing to close)."""
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app))

    async def create(self, request: Request):
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        self.requests.append(
            {
                "path": request.url.path,
                "authorization": request.headers.get("authorization"),
                "content-type": request.headers.get("content-type"),
                "form": form,
            }
        )
        if form["To"] == INVALID_NUMBER:
            return self.error(400, 21211, f"The 'To' number {form['To']} is not valid.")
        if form["To"] == BUSY_NUMBER:
            return self.error(429, 20429, "Too Many Requests")
        if form["To"] == BROKEN_NUMBER:
            return JSONResponse("<html>oops</html>", status_code=502)
        sid = "SM" + uuid.uuid4().hex
        self.sids.append(sid)
        body = {"sid": sid, "status": "queued", "to": form["To"], "body": form.get("Body", "")}
        return JSONResponse(body | {"account_sid": request.path_params["account"]}, 201)

    @staticmethod
    def error(http_status: int, code: int, message: str) -> JSONResponse:
        info = f"https://www.twilio.com/docs/errors/{code}"
        body = {"code": code, "message": message, "more_info": info, "status": http_status}
        return JSONResponse(body, status_code=http_status)


@pytest.fixture
def fake_twilio() -> FakeTwilio:
    return FakeTwilio()


def started(tmp_path: Path, fake: FakeTwilio, **options: str):
    """An app (not served) whose lifespan the test runs, and its Twilio transport, which
    reaches `fake` through httpx.ASGITransport."""
    transport = TwilioTransport()
    settings = settings_for(tmp_path, TWILIO_API_BASE=fake.url, **options)
    return app_for(settings, transport, http=fake.client()), transport
