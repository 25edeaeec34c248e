"""The Twilio transport over real HTTP on loopback: signed webhooks in, TwiML out.

Signatures are computed with twilio's own RequestValidator, exactly as Twilio signs.
`send()` talks to a fake Twilio REST API (a small Starlette app served on loopback) that
speaks the documented request and answers.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.conftest import uic_plugins
from tests.test_qr import CODE as QR_CODE
from tests.test_qr import decode as decode_qr
from tests.test_qr import qr_flow
from tests.turns import HeldTurn, key_of
from twilio.request_validator import RequestValidator

import palabre_qr
import palabre_twilio
from palabre import builtins
from palabre.config import Settings
from palabre.errors import ConfigError
from palabre.hookspecs import hookimpl
from palabre.logs import KeyValueFormatter
from palabre.plugins import make_plugin_manager
from palabre.runtime.messages import Option, Outbound
from palabre.stores.bundle import open_stores
from palabre.stores.redis import RedisSessionStore
from palabre.web.app import create_app
from palabre_qr.png import qr_png
from palabre_twilio import TwilioTransport
from palabre_twilio.config import load_sdk
from palabre_twilio.inbound import UnreachableSender, to_inbound
from palabre_twilio.replies import bodies, twiml
from palabre_twilio.replies import parts as reply_parts
from palabre_twilio.sms import encoding, segment_count, segments, split_for_sms

UIC = Path(__file__).parent.parent / "flows" / "uic.yaml"
TOKEN = "twilio-test-auth-token"
ACCOUNT = "AC" + "1" * 32
PHONE = "+243810000001"  # as Twilio writes an SMS sender
TEL = f"tel:{PHONE}"  # its canonical address
WHATSAPP = f"whatsapp:{PHONE}"
SMS_FROM = "+15005550006"
WHATSAPP_FROM = "whatsapp:+14155238886"
ANSWERS = ["Mbengue", "Ibrahima", "1997", "DA", "1"]


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


# -- a fake Twilio: signed webhooks in, a REST API out ------------------------------------------


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


# -- conversations ----------------------------------------------------------------------------


@pytest.mark.parametrize("contact", [WHATSAPP, PHONE], ids=["whatsapp", "sms"])
def test_a_signed_conversation_gets_its_code_in_twiml(server, contact):
    replies = converse(server.url, ["Bonjour", *ANSWERS], contact)
    assert replies[0][1].startswith("1/5"), "the greeting is not taken as the first answer"
    assert "1. Homme\n2. Femme" in replies[-2][0], "options are numbered text"
    assert "MBEIBR7DA1" in replies[-1][0]


def test_a_long_sms_reply_is_split_into_messages_of_at_most_1600_chars():
    from palabre_twilio.replies import bodies

    text = "Bonjour " * 500
    sms = bodies(Outbound(TEL, text, "fr"))
    whatsapp = bodies(Outbound(WHATSAPP, text, "fr"))
    assert len(sms) == 3 and all(len(part) <= 1600 for part in sms)
    assert all(segment_count(part) <= 10 for part in sms), "parts are whole segments"
    assert len(whatsapp) == 3 and all(len(part) <= 1600 for part in whatsapp)


# -- signatures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "forge",
    ["changed_byte", "unsigned_extra_param", "wrong_url", "wrong_token", "missing"],
)
def test_a_forged_webhook_is_refused_with_403(server, forge):
    params = webhook("Bonjour")
    url = server.url + "/twilio"
    headers = {"X-Twilio-Signature": sign(url, params)}
    if forge == "changed_byte":
        params["Body"] = "Bonjouq"
    elif forge == "unsigned_extra_param":
        params["ButtonPayload"] = "2"
    elif forge == "wrong_url":
        headers["X-Twilio-Signature"] = sign("https://bot.example.org/twilio", params)
    elif forge == "wrong_token":
        headers["X-Twilio-Signature"] = sign(url, params, token="not-the-token")
    else:
        del headers["X-Twilio-Signature"]
    response = httpx.post(url, data=params, headers=headers)
    assert response.status_code == 403
    assert "Message" not in response.text


def test_behind_a_proxy_the_signature_covers_the_public_url(live_server, tmp_path):
    settings = settings_for(tmp_path, PALABRE_PUBLIC_URL="https://bot.example.org")
    with live_server(app_for(settings)) as running:
        params = webhook("Bonjour")
        signed = post(running.url, params, signed_url="https://bot.example.org/twilio")
        assert post(running.url, webhook("Bonjour")).status_code == 403, "not the local URL"
    assert len(messages(signed)) == 2
    tree = ET.fromstring(signed.content)
    actions = {m.get("action") for m in tree.iter("Message")}
    assert actions == {"https://bot.example.org/twilio/status"}


# -- duplicates and ordering --------------------------------------------------------------------


def test_the_same_message_sid_twice_at_once_is_processed_once(server):
    """Both answers carry the one turn's replies: the second, a redelivery, gets them from
    the outbox rather than an empty answer; the turn ran once (the next answer is taken)."""
    params = webhook("Bonjour")
    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(lambda _: messages(post(server.url, params)), range(2)))
    assert len(replies[0]) == 2 and replies[0] == replies[1]
    assert messages(post(server.url, webhook(ANSWERS[0])))[0].startswith("2/5")


def test_five_messages_at_once_are_answered_in_the_order_they_arrived(
    live_server, tmp_path, redis_url
):
    settings = settings_for(tmp_path)
    app = app_for(settings, store=RedisSessionStore(redis_url))
    with live_server(app) as server, ThreadPoolExecutor(len(ANSWERS)) as pool:
        converse(server.url, ["Bonjour"])
        key = key_of(settings.secrets["PALABRE_SECRET"], WHATSAPP)
        with HeldTurn(redis_url, key) as held:  # the five queue behind it, in a known order
            futures = []
            for queued, answer in enumerate(ANSWERS, start=2):
                futures.append(pool.submit(lambda a=answer: messages(post(server.url, webhook(a)))))
                held.wait_for_queue(queued)
        replies = [future.result() for future in futures]
    assert [reply[0][:3] for reply in replies[:4]] == ["2/5", "3/5", "4/5", "5/5"]
    assert "MBEIBR7DA1" in replies[-1][0], "the answers were applied in the order sent"


# -- media, buttons, locations ------------------------------------------------------------------


def test_a_voice_note_gets_the_text_only_reprompt(server):
    converse(server.url, ["Bonjour"])
    voice = webhook(
        "",
        NumMedia="1",
        MediaUrl0="https://api.twilio.com/media/ME1",
        MediaContentType0="audio/ogg",
    )
    reply = messages(post(server.url, voice))
    assert "ne peux lire que des messages texte" in reply[0]


def test_a_location_is_not_an_answer_either(server):
    converse(server.url, ["Bonjour"])
    reply = messages(post(server.url, webhook("", Latitude="-4.325", Longitude="15.322")))
    assert "ne peux lire que des messages texte" in reply[0]


def test_a_button_payload_picks_the_choice(server):
    converse(server.url, ["Bonjour", *ANSWERS[:4]])
    reply = messages(post(server.url, webhook("", ButtonPayload="2", ButtonText="Femme")))
    assert "MBEIBR7DA2" in reply[0]


def test_webhook_fields_become_the_inbound_message():
    params = webhook(
        "ignored when a button was tapped",
        ButtonPayload="2",
        ButtonText="Femme",
        NumMedia="2",
        MediaUrl0="https://api.twilio.com/m/ME0",
        MediaContentType0="image/jpeg",
        MediaUrl1="https://api.twilio.com/m/ME1",
        MediaContentType1="audio/ogg",
        Latitude="-4.325",
        Longitude="15.322",
    )
    inbound = to_inbound(ImmutableMultiDict(params))
    assert (inbound.contact, inbound.channel) == (WHATSAPP, "whatsapp")
    assert (inbound.text, inbound.reply_id) == ("Femme", "2")
    assert inbound.message_id == params["MessageSid"]
    assert [(m.content_type, m.url) for m in inbound.media] == [
        ("image/jpeg", "https://api.twilio.com/m/ME0"),
        ("audio/ogg", "https://api.twilio.com/m/ME1"),
    ]
    assert inbound.location == (-4.325, 15.322)
    sms = to_inbound(ImmutableMultiDict(webhook("hi", PHONE)))
    assert (sms.contact, sms.channel) == (TEL, "sms"), "an SMS sender becomes a tel: address"


# -- malformed requests -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"From": ""}, "missing From"),
        ({"MessageSid": ""}, "missing MessageSid"),
        ({"MessageSid": "SM<script>"}, "MessageSid"),
        ({"NumMedia": "two"}, "NumMedia"),
        ({"NumMedia": "-1"}, "NumMedia"),
        ({"NumMedia": "99"}, "NumMedia"),
        ({"NumMedia": "²"}, "NumMedia"),  # isdigit() says yes, int() says no
        ({"NumMedia": "0²"}, "NumMedia"),
        ({"NumMedia": "١"}, "NumMedia"),  # an Arabic-Indic 1: no webhook writes digits so
        ({"NumMedia": "9" * 5000}, "NumMedia"),  # int() refuses over 4,300 digits
        ({"NumMedia": "1"}, "missing MediaUrl0"),
        ({"Latitude": "north", "Longitude": "15.3"}, "Latitude"),
        ({"Latitude": "91", "Longitude": "15.3"}, "Latitude"),
        ({"Latitude": "nan", "Longitude": "15.3"}, "Latitude"),
        ({"Latitude": "-4.3"}, "Longitude"),
    ],
)
def test_a_signed_but_malformed_webhook_is_a_400(server, change, reason):
    params = webhook("Bonjour") | change
    response = post(server.url, params)
    assert response.status_code == 400
    assert reason in response.text


@pytest.mark.parametrize(
    "sender", ["Vodacom", "40404", "whatsapp:Vodacom", "+1", "243810000001", "whatsapp:"]
)
def test_a_sender_that_is_no_phone_number_gets_no_reply_and_no_5xx(server, sender, caplog):
    params = webhook("Promo", sender)
    with pytest.raises(UnreachableSender):
        to_inbound(ImmutableMultiDict(params))
    caplog.clear()
    caplog.set_level(logging.INFO, logger="palabre")
    response = post(server.url, params)
    assert response.status_code == 200, "signed by Twilio: a retry would not help"
    assert "<Message" not in response.text, "no reply can reach an operator's sender id"
    refused = [r for r in caplog.records if "no phone number" in r.getMessage()]
    assert [getattr(r, "message_sid", None) for r in refused] == [params["MessageSid"]]
    assert "Vodacom" not in caplog.text and "40404" not in caplog.text


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"From": "+243810000001"}', "application/json"),
        (b"From=%FF%FE&MessageSid=SM1", "application/x-www-form-urlencoded"),
        (b"From=\xff&MessageSid=SM1", "application/x-www-form-urlencoded"),
        (b"From&&MessageSid", "application/x-www-form-urlencoded"),
        (b"", "text/plain"),
    ],
    ids=["json", "bad-percent-utf8", "raw-non-utf8", "not-pairs", "text"],
)
@pytest.mark.parametrize("path", ["/twilio", "/twilio/status"])
def test_a_body_that_is_not_a_form_is_a_400(server, content, content_type, path):
    headers = {"content-type": content_type, "X-Twilio-Signature": "x"}
    response = httpx.post(server.url + path, content=content, headers=headers)
    assert response.status_code == 400


def test_a_huge_body_is_refused(server):
    response = post(server.url, webhook("x" * 70_000))
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"MessageSid": "SM1"}, "missing MessageStatus"),
        ({"MessageStatus": "sent"}, "missing MessageSid"),
        ({"MessageSid": "SM1", "MessageStatus": "SENT!"}, "MessageStatus"),
        ({"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": "x1"}, "ErrorCode"),
        ({"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": "2161²"}, "ErrorCode"),
    ],
)
def test_a_malformed_status_callback_is_a_400(server, params, reason):
    response = post(server.url, params, path="/twilio/status")
    assert response.status_code == 400
    assert reason in response.text


def test_a_store_outage_is_a_503_so_twilio_retries(live_server, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    store = RedisSessionStore(f"redis://127.0.0.1:{closed_port}/0", lock_wait=1)
    with live_server(app_for(settings_for(tmp_path), store=store)) as running:
        response = post(running.url, webhook("Bonjour"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


# -- configuration ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_without_the_auth_token_the_app_refuses_to_start(tmp_path):
    app = app_for(settings_for(tmp_path, token=None))
    with pytest.raises(ConfigError, match=r"TWILIO_AUTH_TOKEN.*--insecure-dev"):
        async with app.router.lifespan_context(app):
            pass


@pytest.mark.anyio
async def test_a_malformed_account_sid_is_refused(tmp_path):
    app = app_for(settings_for(tmp_path, TWILIO_ACCOUNT_SID="SK123"))
    with pytest.raises(ConfigError, match="starting with AC"):
        async with app.router.lifespan_context(app):
            pass


def test_insecure_dev_without_a_token_accepts_unsigned_webhooks(live_server, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="palabre")
    app = app_for(settings_for(tmp_path, token=None), insecure_dev=True)
    with live_server(app) as running:
        response = httpx.post(running.url + "/twilio", data=webhook("Bonjour"))
    assert len(messages(response)) == 2
    assert "signatures are NOT checked" in caplog.text


def test_insecure_dev_with_a_token_still_checks_signatures(live_server, tmp_path):
    with live_server(app_for(settings_for(tmp_path), insecure_dev=True)) as running:
        response = httpx.post(running.url + "/twilio", data=webhook("Bonjour"))
    assert response.status_code == 403


def test_the_module_imports_without_the_sdk_and_names_the_extra(monkeypatch):
    code = "import sys; sys.modules['twilio'] = None; import palabre_twilio; print('ok')"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stdout.strip() == "ok", run.stderr
    monkeypatch.setitem(sys.modules, "twilio.request_validator", None)
    with pytest.raises(ConfigError, match=r"pip install 'palabre\[twilio\]'"):
        load_sdk("twilio.request_validator")


def test_the_plugin_is_registered_by_its_entry_point():
    manager = make_plugin_manager()
    transports = [t for batch in manager.hook.register_transports() for t in batch]
    assert any(isinstance(t, TwilioTransport) for t in transports)


def test_no_phone_number_or_body_reaches_the_logs(server, caplog):
    caplog.set_level(logging.DEBUG, logger="palabre")
    converse(server.url, ["Bonjour", *ANSWERS])
    converse(server.url, ["Bonjour", "Kabila"], contact=PHONE)
    status = {"MessageSid": "SM9", "MessageStatus": "failed", "ErrorCode": "21610", "To": PHONE}
    assert post(server.url, status, path="/twilio/status").status_code == 204
    lines = "\n".join(KeyValueFormatter().format(record) for record in caplog.records)
    assert "twilio message received" in lines
    for private in ("243810000001", "Mbengue", "Ibrahima", "Kabila", "MBEIBR7DA1", "Homme"):
        assert private not in lines, f"{private!r} appears in the logs"


# -- status callbacks ---------------------------------------------------------------------------


def status(sid: str, state: str, to: str = WHATSAPP, **extra: str) -> dict[str, str]:
    """The parameters of a status callback, as Twilio posts them."""
    params = {"MessageSid": sid, "MessageStatus": state, "SmsStatus": state, "To": to}
    return (
        params | {"From": WHATSAPP_FROM, "AccountSid": ACCOUNT, "ApiVersion": "2010-04-01"} | extra
    )


def in_log(tmp_path: Path, query):
    """Run `query(log)` on a second connection to the app's message log."""

    async def run():
        stores = open_stores(Settings(data_dir=tmp_path / "data"))
        try:
            return await query(stores.messages)
        finally:
            await stores.aclose()

    return asyncio.run(run())


def test_status_callbacks_update_the_log_and_never_regress(live_server, tmp_path):
    fake = FakeTwilio()
    with live_server(fake.app) as api:
        app = app_for(settings_for(tmp_path, TWILIO_API_BASE=api.url))
        with live_server(app) as running:
            for state in ("queued", "sent", "delivered", "sent", "queued"):
                response = post(running.url, status("SM1", state), path="/twilio/status")
                assert response.status_code == 204 and response.content == b""
            read = post(running.url, status("SM2", "read"), path="/twilio/status")
            late = post(running.url, status("SM2", "delivered"), path="/twilio/status")
            key = app.state.host.contact_key(WHATSAPP)
    assert read.status_code == late.status_code == 204
    first, second = in_log(tmp_path, lambda log: asyncio.gather(log.get("SM1"), log.get("SM2")))
    assert (first.status, first.channel, first.contact_key) == ("delivered", "twilio", key)
    assert second.status == "read"
    assert fake.requests == [], "a status callback sends nothing"


def test_error_21610_marks_the_contact_opted_out(live_server, tmp_path):
    with live_server(app_for(settings_for(tmp_path))) as running:
        failed = status("SM3", "undelivered", to=PHONE, ErrorCode="21610")
        assert post(running.url, failed, path="/twilio/status").status_code == 204
        other = status("SM4", "failed", to=WHATSAPP, ErrorCode="63016")
        assert post(running.url, other, path="/twilio/status").status_code == 204
        host = running.server.config.app.state.host
        keys = host.contact_key(TEL), host.contact_key(WHATSAPP)
    logged = in_log(tmp_path, lambda log: log.get("SM3"))
    assert (logged.status, logged.error_code) == ("undelivered", "21610")
    opted = in_log(tmp_path, lambda log: asyncio.gather(*(log.opted_out(k) for k in keys)))
    assert opted == [True, False], "only 21610 (STOP) opts a contact out"


# -- send() through a fake Twilio REST API --------------------------------------------------


INVALID_NUMBER = "+15005550001"  # Twilio's own test number for "invalid To"
BUSY_NUMBER = "+15005550009"
BROKEN_NUMBER = "+15005550010"


class FakeTwilio:
    """Twilio's Messages.json resource, as documented: form in, 201 JSON or error JSON out."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.sids: list[str] = []
        path = "/2010-04-01/Accounts/{account}/Messages.json"
        self.app = Starlette(routes=[Route(path, self.create, methods=["POST"])])

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
        body = {"sid": sid, "status": "queued", "to": form["To"], "body": form["Body"]}
        return JSONResponse(body | {"account_sid": request.path_params["account"]}, 201)

    @staticmethod
    def error(http_status: int, code: int, message: str) -> JSONResponse:
        info = f"https://www.twilio.com/docs/errors/{code}"
        body = {"code": code, "message": message, "more_info": info, "status": http_status}
        return JSONResponse(body, status_code=http_status)


@pytest.fixture
def fake_twilio(live_server):
    fake = FakeTwilio()
    with live_server(fake.app) as api:
        fake.url = api.url
        yield fake


def started(tmp_path: Path, fake: FakeTwilio, **options: str):
    """An app (not served) whose lifespan the test runs, and its Twilio transport."""
    transport = TwilioTransport()
    settings = settings_for(tmp_path, TWILIO_API_BASE=fake.url, **options)
    return app_for(settings, transport), transport


@pytest.mark.anyio
async def test_send_posts_the_documented_request_and_logs_the_sid(tmp_path, fake_twilio):
    app, transport = started(tmp_path, fake_twilio, PALABRE_PUBLIC_URL="https://bot.example.org")
    question = Outbound(WHATSAPP, "5/5 Genre ?", "fr", (Option("1", "Homme"), Option("2", "Femme")))
    async with app.router.lifespan_context(app):
        delivery = await transport.send(question)
        logged = await app.state.host.stores.messages.get(delivery.provider_id)
        key = app.state.host.contact_key(WHATSAPP)
    credentials = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    assert fake_twilio.requests == [
        {
            "path": f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
            "authorization": f"Basic {credentials}",
            "content-type": "application/x-www-form-urlencoded",
            "form": {
                "To": WHATSAPP,
                "From": WHATSAPP_FROM,
                "Body": "5/5 Genre ?\n1. Homme\n2. Femme",
                "StatusCallback": "https://bot.example.org/twilio/status",
            },
        }
    ]
    assert (delivery.status, delivery.error_code) == ("queued", None)
    assert (logged.status, logged.channel, logged.contact_key) == ("queued", "twilio", key)


@pytest.mark.anyio
async def test_a_long_sms_is_sent_in_parts_from_the_sms_number(tmp_path, fake_twilio):
    app, transport = started(tmp_path, fake_twilio)
    async with app.router.lifespan_context(app):
        delivery = await transport.send(Outbound(TEL, "Bonjour à vous. " * 250, "fr"))
        logged = [await app.state.host.stores.messages.get(sid) for sid in fake_twilio.sids]
    forms = [request["form"] for request in fake_twilio.requests]
    assert len(forms) == 3
    assert {(f["To"], f["From"]) for f in forms} == {(PHONE, SMS_FROM)}
    assert all(len(f["Body"]) <= 1600 and "StatusCallback" not in f for f in forms)
    assert " ".join(f["Body"] for f in forms) == ("Bonjour à vous. " * 250).strip()
    assert delivery.provider_id == fake_twilio.sids[0] and delivery.status == "queued"
    assert all(entry is not None and entry.status == "queued" for entry in logged)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("to", "code", "retryable"),
    [(INVALID_NUMBER, "21211", False), (BUSY_NUMBER, "20429", True), (BROKEN_NUMBER, None, True)],
)
async def test_twilio_errors_become_failed_deliveries(tmp_path, fake_twilio, to, code, retryable):
    app, transport = started(tmp_path, fake_twilio)
    async with app.router.lifespan_context(app):
        delivery = await transport.send(Outbound(f"tel:{to}", "Bonjour", "fr"))
    assert (delivery.provider_id, delivery.status) == (None, "failed")
    assert (delivery.error_code, delivery.retryable) == (code, retryable)
    assert to not in delivery.detail, "Twilio's message quotes the number: it is not kept"


@pytest.mark.anyio
@pytest.mark.parametrize("to", ["whatsapp-user:US.13491208655302741918", "not an address"])
async def test_an_address_twilio_cannot_reach_fails_for_good_without_a_request(
    tmp_path, fake_twilio, to
):
    app, transport = started(tmp_path, fake_twilio)
    async with app.router.lifespan_context(app):
        delivery = await transport.send(Outbound(to, "Bonjour", "fr"))
    assert (delivery.status, delivery.error_code, delivery.retryable) == (
        "failed",
        "invalid_address",
        False,
    )
    assert fake_twilio.requests == []


@pytest.mark.anyio
async def test_an_unreachable_api_is_a_retryable_failure(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = app_for(settings_for(tmp_path, TWILIO_API_BASE=closed), transport := TwilioTransport())
    async with app.router.lifespan_context(app):
        delivery = await transport.send(Outbound(TEL, "Bonjour", "fr"))
    assert (delivery.status, delivery.retryable) == ("failed", True)


@pytest.mark.anyio
async def test_nothing_is_sent_to_a_contact_who_opted_out(tmp_path, fake_twilio):
    app, transport = started(tmp_path, fake_twilio)
    params = status("SM5", "failed", to=PHONE, ErrorCode="21610")
    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://testserver")
        async with client:
            headers = {"X-Twilio-Signature": sign("http://testserver/twilio/status", params)}
            callback = await client.post("/twilio/status", data=params, headers=headers)
        delivery = await transport.send(Outbound(TEL, "Bonjour", "fr"))
    assert callback.status_code == 204
    assert (delivery.status, delivery.error_code) == ("failed", "21610")
    assert fake_twilio.requests == []


# -- SMS arithmetic -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bonjour, votre code est MBEIBR7DA1", "GSM-7"),
        ("Prix: 5€ {ok} [1] ~ ^ | \\", "GSM-7"),
        ("àéèùìòÇÄÖÑÜäöñü@£$¥", "GSM-7"),
        ("Ça coûte", "UCS-2"),  # û is not in GSM 03.38
        ("مرحبا", "UCS-2"),
        ("OK 😀", "UCS-2"),
    ],
)
def test_encoding(text, expected):
    assert encoding(text) == expected


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("", 0),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # 160 septets
        ("€" * 81, 2),
        ("a" + "€" * 80, 2),  # 161 septets
        ("ب" * 70, 1),
        ("ب" * 71, 2),
        ("ب" * 134, 2),
        ("ب" * 135, 3),
        ("😀" * 35, 1),  # 70 UTF-16 code units
        ("😀" * 36, 2),
    ],
)
def test_segment_counts_at_the_boundaries(text, count):
    assert segment_count(text) == count


def test_a_segment_never_splits_an_escape_or_a_surrogate_pair():
    gsm = segments("a" * 152 + "€" + "b" * 10)
    assert [len(s) for s in gsm] == [152, 11], "the € (2 septets) moves to the next segment"
    ucs = segments("ب" * 66 + "😀" + "ب" * 10)
    assert [len(s.encode("utf-16-le")) // 2 for s in ucs] == [66, 12]


def test_a_4000_char_text_is_split_at_word_boundaries():
    words = [f"mot{i}" for i in range(800)]
    text = " ".join(words)[:4000].rsplit(" ", 1)[0]
    parts = split_for_sms(text)
    assert len(parts) == 3
    assert all(len(part) <= 1600 for part in parts)
    assert " ".join(parts) == text, "cuts fall on spaces and lose nothing"
    assert all(segment_count(part) <= 10 for part in parts), "each part is whole segments"


def test_arabic_and_emoji_are_split_without_breaking_characters():
    text = ("مرحبا بكم 😀👍🏽 " * 300).strip()
    parts = split_for_sms(text)
    assert len(parts) > 1
    assert all(len(part.encode("utf-16-le")) // 2 <= 1600 for part in parts)
    assert " ".join(parts) == text
    for part in parts:
        part.encode("utf-16-le")  # a lone surrogate would raise here
        assert not part.startswith("🏽"), "a skin tone stays with its emoji"
    unbroken = split_for_sms("😀" * 1000)
    assert "".join(unbroken) == "😀" * 1000


def test_a_short_text_is_one_part():
    assert split_for_sms("Bonjour") == ["Bonjour"]
    assert split_for_sms("") == []


# -- images: a QR code at its signed public URL -------------------------------------------------


PUBLIC = "https://bot.example.org"


def qr_app(tmp_path: Path, **options: str):
    """An app serving the QR card flow (it ends with a QR image) through Twilio."""
    manager = make_plugin_manager([builtins, palabre_twilio, palabre_qr], entry_points=False)
    settings = settings_for(tmp_path, **options)
    return create_app([qr_flow(tmp_path)], settings, plugins=manager)


def twiml_parts(response: httpx.Response) -> list[tuple[str, list[str]]]:
    """(body, media URLs) of each <Message>: text directly inside, or in <Body>."""
    assert response.status_code == 200, f"{response.status_code}: {response.text}"
    found = []
    for message in ET.fromstring(response.content).iter("Message"):
        body = message.findtext("Body") if message.find("Body") is not None else message.text
        found.append((body or "", [m.text or "" for m in message.iter("Media")]))
    return found


def qr_card(base: str, signed_url: str, contact: str = WHATSAPP) -> list[tuple[str, list[str]]]:
    post(base, webhook("Hello", contact), signed_url=signed_url)
    return twiml_parts(post(base, webhook(QR_CODE, contact), signed_url=signed_url))


def test_the_qr_image_rides_in_twiml_at_its_public_signed_url(live_server, tmp_path):
    with live_server(qr_app(tmp_path, PALABRE_PUBLIC_URL=PUBLIC)) as running:
        [(body, media)] = qr_card(running.url, f"{PUBLIC}/twilio")
        assert body == f"Your code is {QR_CODE}."
        [url] = media
        assert url.startswith(f"{PUBLIC}/media/") and url.endswith(".png")
        assert QR_CODE not in url
        fetched = httpx.get(running.url + urlsplit(url).path)  # as Twilio would, via the proxy
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/png"
    assert decode_qr(fetched.content) == QR_CODE


def test_without_a_public_url_images_are_left_out_with_one_warning(live_server, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="palabre.twilio")
    with live_server(qr_app(tmp_path)) as running:
        first = qr_card(running.url, f"{running.url}/twilio")
        second = qr_card(running.url, f"{running.url}/twilio", contact=PHONE)
    assert first == second == [(f"Your code is {QR_CODE}.", [])], "the text still goes"
    warnings = [r for r in caplog.records if "PALABRE_PUBLIC_URL is not set" in r.getMessage()]
    assert len(warnings) == 1, "said once, not for every image"


def test_an_image_goes_on_the_first_part_of_a_split_sms_only():
    text = "Bonjour " * 500
    parts = reply_parts(Outbound(TEL, text, "fr", image="m1"), "https://x.test/media/t.png")
    assert len(parts) == 3
    assert [part.media_url for part in parts] == ["https://x.test/media/t.png", None, None]
    assert [part.body for part in parts] == bodies(Outbound(TEL, text, "fr"))
    alone = reply_parts(Outbound(TEL, "", "fr", image="m1"), "https://x.test/media/t.png")
    assert [(p.body, p.media_url) for p in alone] == [("", "https://x.test/media/t.png")]
    tree = ET.fromstring(twiml([*parts[:2], *alone]))
    assert [len(m.findall("Media")) for m in tree.iter("Message")] == [1, 0, 1]
    assert tree.findtext("Message/Body").startswith("Bonjour"), "the body stays beside <Media>"


async def stored_qr(app) -> tuple[str, str]:
    """Put the QR PNG in the app's media store: its media id and its signed URL."""
    host = app.state.host
    media_id = await host.stores.media.put(qr_png(QR_CODE), "image/png")
    return media_id, await host.media_url(media_id)


@pytest.mark.anyio
async def test_send_posts_the_media_url_of_the_image(tmp_path, fake_twilio):
    app, transport = started(tmp_path, fake_twilio, PALABRE_PUBLIC_URL=PUBLIC)
    async with app.router.lifespan_context(app):
        media_id, url = await stored_qr(app)
        delivery = await transport.send(Outbound(WHATSAPP, "Votre code", "fr", image=media_id))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=PUBLIC)
        async with client:
            fetched = await client.get(urlsplit(url).path)
    assert url.startswith(f"{PUBLIC}/media/")
    assert [request["form"] for request in fake_twilio.requests] == [
        {
            "To": WHATSAPP,
            "From": WHATSAPP_FROM,
            "Body": "Votre code",
            "MediaUrl": url,
            "StatusCallback": f"{PUBLIC}/twilio/status",
        }
    ]
    assert delivery.status == "queued"
    assert decode_qr(fetched.content) == QR_CODE


@pytest.mark.anyio
async def test_a_long_sms_sends_its_image_with_the_first_part_only(tmp_path, fake_twilio):
    app, transport = started(tmp_path, fake_twilio, PALABRE_PUBLIC_URL=PUBLIC)
    async with app.router.lifespan_context(app):
        media_id, url = await stored_qr(app)
        await transport.send(Outbound(TEL, "Bonjour à vous. " * 250, "fr", image=media_id))
        await transport.send(Outbound(TEL, "", "fr", image=media_id))
    forms = [request["form"] for request in fake_twilio.requests]
    assert [form.get("MediaUrl") for form in forms] == [url, None, None, url]
    assert "Body" not in forms[-1], "an image alone needs no empty body"


@pytest.mark.anyio
async def test_an_expired_image_is_sent_as_text_only(tmp_path, fake_twilio, caplog):
    app, transport = started(tmp_path, fake_twilio, PALABRE_PUBLIC_URL=PUBLIC)
    async with app.router.lifespan_context(app):
        await transport.send(Outbound(WHATSAPP, "Votre code", "fr", image="gone-or-purged"))
    assert "MediaUrl" not in fake_twilio.requests[0]["form"]
    assert "twilio image expired or unknown" in caplog.text
