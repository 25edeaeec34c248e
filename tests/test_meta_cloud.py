"""The Meta WhatsApp Cloud API transport, over real HTTP on loopback.

Webhook bodies follow Meta's documented notification shapes and are signed over the
exact bytes sent. Replies go to a fake Graph API (a small Starlette app served by uvicorn)
that records every request and answers like Meta, documented error JSON included.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.conftest import uic_plugins
from tests.test_qr import CODE as QR_CODE
from tests.test_qr import decode as decode_qr
from tests.test_qr import qr_flow

import palabre.builtins
import palabre_meta_cloud
import palabre_qr
from palabre.bootstrap import build_engine
from palabre.config import Settings
from palabre.contacts import contact_hasher, contact_key
from palabre.errors import ConfigError, StoreUnavailable
from palabre.hookspecs import hookimpl
from palabre.logs import KeyValueFormatter
from palabre.plugins import make_plugin_manager
from palabre.render import as_plain_text
from palabre.runtime.messages import Inbound, Media, Option, Outbound
from palabre.stores.bundle import open_stores
from palabre.stores.sqlite import SQLiteSessionStore
from palabre.transports import Host
from palabre.web.app import create_app
from palabre_meta_cloud import MetaCloudTransport
from palabre_meta_cloud.inbound import read_message
from palabre_meta_cloud.payload import read_notification
from palabre_meta_cloud.signature import sign
from palabre_meta_cloud.transport import RETRY_DELAYS
from palabre_qr.png import qr_png

UIC = Path(__file__).parent.parent / "flows" / "uic.yaml"
APP_SECRET = "test-app-secret"
ACCESS_TOKEN = "EAAtest-access-token"
VERIFY_TOKEN = "test-verify-token"
PHONE_ID = "106540352242922"
ALICE, BOB = "243810000001", "243810000002"  # wa_ids, as Meta writes them
ALICE_AT, BOB_AT = f"whatsapp:+{ALICE}", f"whatsapp:+{BOB}"  # their canonical addresses
GENDER_ROWS = [
    {"id": "1", "title": "Homme"},
    {"id": "2", "title": "Femme"},
    {"id": "3", "title": "Trans"},
    {"id": "4", "title": "Autre"},
]


# -- a fake Graph API and the app under test -----------------------------------------


class FakeGraph:
    """Records each /messages and /media request; answers with a new wamid or media id, or
    with the answers queued in `answers` (/messages) and `upload_answers` (/media)."""

    def __init__(self) -> None:
        self.url = ""  # set once served
        self.requests: list[dict[str, Any]] = []
        self.answers: list[tuple[int, dict[str, Any]]] = []
        self.upload_answers: list[tuple[int, dict[str, Any]]] = []
        self.app = Starlette(
            routes=[
                Route("/{version}/{phone}/messages", self.messages, methods=["POST"]),
                Route("/{version}/{phone}/media", self.media, methods=["POST"]),
            ]
        )

    async def media(self, request: Request) -> JSONResponse:
        """An upload, read as the documented multipart form: file, type, messaging_product."""
        content_type = request.headers.get("content-type", "")
        self.requests.append(
            {
                "path": request.url.path,
                "auth": request.headers.get("authorization"),
                "content_type": content_type.split(";")[0],
                "form": multipart_form(content_type, await request.body()),
            }
        )
        if self.upload_answers:
            status_code, answer = self.upload_answers.pop(0)
            return JSONResponse(answer, status_code=status_code)
        return JSONResponse({"id": f"MEDIA{len(self.requests)}"})

    async def messages(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append(
            {"path": request.url.path, "auth": request.headers.get("authorization"), "json": body}
        )
        if self.answers:
            status_code, answer = self.answers.pop(0)
            return JSONResponse(answer, status_code=status_code)
        wamid = f"wamid.OUT{len(self.requests)}"
        who = recipient_of(body)
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": who, "wa_id": who}],
                "messages": [{"id": wamid}],
            }
        )

    def bodies(self, to: str | None = None) -> list[dict[str, Any]]:
        """The /messages bodies, all or those for `to` (a wa_id or a BSUID)."""
        sent = [r["json"] for r in self.requests if "json" in r]
        return [body for body in sent if to is None or recipient_of(body) == to]

    def uploads(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if "form" in r]

    def texts(self, to: str) -> list[str]:
        return [_shown_text(body) for body in self.bodies(to)]


def recipient_of(body: dict[str, Any]) -> str:
    """Who a /messages body is for: `to` (a wa_id) or `recipient` (a BSUID), never both."""
    assert ("to" in body) != ("recipient" in body), "exactly one of to and recipient"
    return body.get("to") or body["recipient"]


def multipart_form(content_type: str, body: bytes) -> dict[str, Any]:
    """Each part of a multipart/form-data body: a field's text, or a file's
    (filename, content type, bytes)."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    assert message.is_multipart(), "the upload must be multipart/form-data"
    form: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True)
        filename = part.get_filename()
        form[name] = (filename, part.get_content_type(), data) if filename else data.decode()
    return form


def _shown_text(body: dict[str, Any]) -> str:
    if body["type"] == "text":
        return body["text"]["body"]
    if body["type"] == "image":
        return body["image"].get("caption", "")
    return body["interactive"]["body"]["text"]


def graph_error(code: int, message: str, subcode: int | None = None) -> dict[str, Any]:
    """An error answer as Meta documents it."""
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


def settings_for(tmp_path: Path, graph_url: str, **drop: bool) -> Settings:
    secrets = {
        "PALABRE_SECRET": "test-secret",
        "META_APP_SECRET": APP_SECRET,
        "META_ACCESS_TOKEN": ACCESS_TOKEN,
        "META_VERIFY_TOKEN": VERIFY_TOKEN,
    }
    options = {"META_PHONE_NUMBER_ID": PHONE_ID, "META_API_BASE": graph_url}
    options["PALABRE_OUTBOX_BACKOFF"] = "0.05"  # the outbox retries a throttled reply soon
    for name in drop:
        secrets.pop(name, None)
    return Settings(data_dir=tmp_path / "data", secrets=secrets, options=options)


class Plugin:
    """Registers one given transport, so a test can reach it."""

    def __init__(self, transport: MetaCloudTransport) -> None:
        self.transport = transport

    @hookimpl
    def register_transports(self) -> list[MetaCloudTransport]:
        return [self.transport]


def app_for(settings: Settings, **options: Any) -> Starlette:
    plugins = uic_plugins(palabre_meta_cloud)
    manager = make_plugin_manager(plugins, entry_points=False)
    return create_app([UIC], settings, plugins=manager, **options)


@pytest.fixture
def graph(live_server) -> Iterator[FakeGraph]:
    fake = FakeGraph()
    with live_server(fake.app) as server:
        fake.url = server.url
        yield fake


@pytest.fixture
def meta(live_server, graph, tmp_path) -> Iterator[httpx.Client]:
    """An httpx client on the palabre app serving the UIC flow through the Meta transport."""
    app = app_for(settings_for(tmp_path, graph.url))
    with live_server(app) as server, httpx.Client(base_url=server.url) as client:
        yield client


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the fake Graph API did not get what was expected"
        time.sleep(0.02)


def settle() -> None:
    """Give background sends a moment, before asserting that nothing was sent."""
    time.sleep(0.3)


# -- webhook bodies, as Meta documents them ---------------------------------------------


def message(sender: str, wamid: str, kind: str, **content: Any) -> dict[str, Any]:
    return {"from": sender, "id": wamid, "timestamp": "1717000000", "type": kind, **content}


def text(sender: str, wamid: str, body: str) -> dict[str, Any]:
    return message(sender, wamid, "text", text={"body": body})


def reply(sender: str, wamid: str, kind: str, reply_id: str, title: str) -> dict[str, Any]:
    return message(
        sender,
        wamid,
        "interactive",
        interactive={"type": kind, kind: {"id": reply_id, "title": title}},
    )


def change(messages=(), statuses=(), phone_id: str = PHONE_ID) -> dict[str, Any]:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": phone_id},
    }
    senders = sorted({m["from"] for m in messages if "from" in m})
    if senders:
        value["contacts"] = [{"profile": {"name": "Someone"}, "wa_id": s} for s in senders]
    if messages:
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    return {"value": value, "field": "messages"}


def notification(*changes: dict[str, Any]) -> dict[str, Any]:
    entries = [{"id": "102290129340398", "changes": [c]} for c in changes]
    return {"object": "whatsapp_business_account", "entry": entries}


def status(wamid: str, state: str, code: int | None = None) -> dict[str, Any]:
    update: dict[str, Any] = {
        "id": wamid,
        "status": state,
        "timestamp": "1717000001",
        "recipient_id": ALICE,
    }
    if code is not None:
        update["errors"] = [{"code": code, "title": "Message failed"}]
    return update


def post(
    client: httpx.Client, payload: Any, *, raw: bytes | None = None, signature: str | None = None
) -> httpx.Response:
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    headers["X-Hub-Signature-256"] = (
        signature if signature is not None else sign(APP_SECRET.encode(), body)
    )
    return client.post("/meta", content=body, headers=headers)


def say(client: httpx.Client, sender: str, wamid: str, body: str) -> None:
    response = post(client, notification(change([text(sender, wamid, body)])))
    assert response.status_code == 200, response.text


def logged(tmp_path: Path, wamid: str):
    async def read():
        stores = open_stores(Settings(data_dir=tmp_path / "data"))
        try:
            return await stores.messages.get(wamid)
        finally:
            await stores.aclose()

    return asyncio.run(read())


# -- verification ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "token", "status"),
    [
        ("subscribe", VERIFY_TOKEN, 200),
        ("subscribe", "wrong-token", 403),
        ("subscribe", None, 403),
        ("unsubscribe", VERIFY_TOKEN, 403),
        (None, VERIFY_TOKEN, 403),
    ],
)
def test_verification_echoes_the_challenge_only_with_the_right_mode_and_token(
    meta, mode, token, status
):
    query = {"hub.challenge": "1158201444"}
    query |= {"hub.mode": mode} if mode else {}
    query |= {"hub.verify_token": token} if token else {}
    response = meta.get("/meta", params=query)
    assert response.status_code == status
    if status == 200:
        assert response.text == "1158201444"
        assert response.headers["content-type"].startswith("text/plain")
    else:
        assert "1158201444" not in response.text


# -- conversations ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["list_reply", "button_reply"])
def test_signed_webhooks_drive_the_uic_flow_and_replies_reach_the_graph_api(meta, graph, kind):
    for i, answer in enumerate(["Bonjour", "Mbengue", "Ibrahima", "1997", "DA"]):
        say(meta, ALICE, f"wamid.IN{i}", answer)
    wait_until(lambda: any(b["type"] == "interactive" for b in graph.bodies()))
    gender = graph.bodies()[-1]
    assert gender["to"] == ALICE
    assert gender["interactive"]["type"] == "list"
    assert gender["interactive"]["body"]["text"] == "5/5 Quel est votre genre ?"
    assert gender["interactive"]["action"]["button"] == "Choisir"
    assert gender["interactive"]["action"]["sections"] == [{"rows": GENDER_ROWS}]

    tap = reply(ALICE, "wamid.IN9", kind, "1", "Homme")
    assert post(meta, notification(change([tap]))).status_code == 200
    wait_until(lambda: "MBEIBR7DA1" in graph.texts(ALICE)[-1])
    # The code comes as an image (its QR code), uploaded first and sent by id with a caption.
    upload, last = graph.requests[-2:]
    assert upload["path"] == f"/v21.0/{PHONE_ID}/media"
    assert last["path"] == f"/v21.0/{PHONE_ID}/messages"
    assert last["auth"] == f"Bearer {ACCESS_TOKEN}"
    assert last["json"] == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": ALICE,
        "type": "image",
        "image": {"id": last["json"]["image"]["id"], "caption": last["json"]["image"]["caption"]},
    }
    assert "MBEIBR7DA1" in last["json"]["image"]["caption"]
    assert all(r["json"]["to"] == ALICE for r in graph.requests if r["path"].endswith("/messages"))


def test_one_body_with_two_entries_several_messages_and_a_duplicate_is_processed_once(meta, graph):
    hello = text(ALICE, "wamid.A1", "Bonjour")
    payload = notification(
        change([hello, dict(hello), text(ALICE, "wamid.A2", "Mbengue")]),
        change([text(BOB, "wamid.B1", "Hello")]),
    )
    assert post(meta, payload).status_code == 200
    wait_until(lambda: len(graph.requests) == 5)
    alice = graph.texts(ALICE)
    assert len(alice) == 3, "the duplicate wamid must be answered once"
    assert alice[1].startswith("1/5") and alice[2].startswith("2/5"), "answered in order"
    assert [t[:3] for t in graph.texts(BOB)][1] == "1/5"
    assert "What are the first 3 letters" in graph.texts(BOB)[1]

    assert post(meta, payload).status_code == 200, "Meta redelivers: answer 200, reply nothing"
    settle()
    assert len(graph.requests) == 5


def test_statuses_update_the_message_log_and_never_send_anything(meta, graph, tmp_path):
    say(meta, ALICE, "wamid.IN1", "Bonjour")
    wait_until(lambda: len(graph.requests) == 2)
    first, second = "wamid.OUT1", "wamid.OUT2"
    assert logged(tmp_path, first).status == "accepted"

    updates = [status(first, "sent"), status(first, "delivered"), status(first, "read")]
    updates += [status(second, "failed", 131047), status("wamid.OLD", "failed", 131026)]
    assert post(meta, notification(change(statuses=updates))).status_code == 200
    settle()
    assert len(graph.requests) == 2, "a status must never trigger a reply"
    assert logged(tmp_path, first).status == "read"
    window_closed = logged(tmp_path, second)
    assert (window_closed.status, window_closed.error_code) == ("failed", "131047")
    assert logged(tmp_path, "wamid.OLD").error_code == "131026"


@pytest.mark.parametrize("code", ["13104²", "١٣١٠٤٧", "9" * 5000, "131047"])
def test_a_failed_status_with_any_error_code_is_recorded_never_a_500(meta, graph, tmp_path, code):
    update = status("wamid.OUT9", "failed") | {"errors": [{"code": code, "title": "x"}]}
    assert post(meta, notification(change(statuses=[update]))).status_code == 200
    assert logged(tmp_path, "wamid.OUT9").error_code == code


# -- what each message type does ---------------------------------------------------------


def executed_lines(work: Callable[[], object]) -> int:
    """How many lines of Python `work` runs (sys.settrace): its cost, whatever the machine."""
    count = 0

    def trace(frame: Any, event: str, arg: Any) -> Any:
        nonlocal count
        count += event == "line"
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        work()
    finally:
        sys.settrace(previous)
    return count


def many_updates(count: int) -> bytes:
    """`count` distinct statuses in one change (a duplicate check by list was quadratic)."""
    updates = [status(f"wamid.S{i}", "delivered") for i in range(count)]
    return json.dumps(notification(change(statuses=updates))).encode()


def many_changes(count: int) -> bytes:
    """`count` changes of one message each (a duplicate set rebuilt per change was quadratic)."""
    return json.dumps(
        notification(*[change([text(ALICE, f"wamid.M{i}", "x")]) for i in range(count)])
    ).encode()


@pytest.mark.parametrize("body_of", [many_updates, many_changes])
def test_reading_a_body_costs_in_proportion_to_its_size(body_of):
    small, large = body_of(1000), body_of(2000)
    cost = [
        executed_lines(lambda body=body: read_notification(body, PHONE_ID))
        for body in (small, large)
    ]
    assert cost[1] < 2.2 * cost[0], f"twice the items cost {cost[1] / cost[0]:.1f} times as much"
    read = read_notification(large, PHONE_ID)
    assert len(read.statuses) + len(read.inbounds) == 2000, "all kept: none is a duplicate"


def test_message_types_become_inbounds_as_documented():
    image = {"id": "1479537139650973", "mime_type": "image/jpeg", "sha256": "x", "caption": ""}
    assert read_message(message(ALICE, "w1", "image", image=image)) == Inbound(
        ALICE_AT,
        "",
        "whatsapp",
        "w1",
        media=(Media("image/jpeg", media_id="1479537139650973"),),
        transport="meta_cloud",
    )
    document = {"id": "D1", "mime_type": "application/pdf", "filename": "a.pdf", "caption": "CIU"}
    read = read_message(message(ALICE, "w2", "document", document=document))
    assert (read.text, read.media) == ("CIU", (Media("application/pdf", media_id="D1"),))
    where = {"latitude": -4.3217, "longitude": 15.3125, "name": "Gombe", "address": "x"}
    assert read_message(message(ALICE, "w3", "location", location=where)).location == (
        -4.3217,
        15.3125,
    )
    button = message(ALICE, "w4", "button", button={"payload": "2", "text": "Femme"})
    assert (read_message(button).reply_id, read_message(button).text) == ("2", "Femme")
    tap = read_message(reply(ALICE, "w5", "list_reply", "4", "Autre"))
    assert (tap.reply_id, tap.text, tap.channel) == ("4", "Autre", "whatsapp")
    emoji = message(ALICE, "w6", "reaction", reaction={"message_id": "wamid.OUT1", "emoji": "👍"})
    assert read_message(emoji) is None
    errors = [{"code": 131051, "title": "Message type unknown"}]
    unknown = read_message(message(ALICE, "w7", "unsupported", errors=errors))
    assert (unknown.text, unknown.media, unknown.reply_id) == ("", (), None)


NOT_TEXT = "Désolé, je ne peux lire que des messages texte ici."
EMPTY = "Veuillez écrire une réponse."


@pytest.mark.parametrize(
    ("kind", "content", "why"),
    [
        ("image", {"image": {"id": "I1", "mime_type": "image/jpeg"}}, NOT_TEXT),
        ("audio", {"audio": {"id": "A1", "mime_type": "audio/ogg; codecs=opus"}}, NOT_TEXT),
        ("video", {"video": {"id": "V1", "mime_type": "video/mp4"}}, NOT_TEXT),
        ("document", {"document": {"id": "D1", "mime_type": "application/pdf"}}, NOT_TEXT),
        ("location", {"location": {"latitude": -4.3, "longitude": 15.3}}, NOT_TEXT),
        ("unsupported", {"errors": [{"code": 131051, "title": "Unsupported"}]}, EMPTY),
    ],
)
def test_media_location_and_unsupported_messages_get_the_question_again(
    meta, graph, kind, content, why
):
    say(meta, ALICE, "wamid.IN1", "Bonjour")
    wait_until(lambda: len(graph.requests) == 2)
    incoming = message(ALICE, "wamid.M", kind, **content)
    assert post(meta, notification(change([incoming]))).status_code == 200
    wait_until(lambda: len(graph.requests) == 3)
    why_line, question = graph.texts(ALICE)[-1].split("\n")
    assert why_line.startswith(why)
    assert "MBE pour Mbengue" in question, "the question is asked again"


def test_a_reaction_is_ignored_politely(meta, graph):
    say(meta, ALICE, "wamid.IN1", "Bonjour")
    wait_until(lambda: len(graph.requests) == 2)
    emoji = message(
        ALICE, "wamid.R", "reaction", reaction={"message_id": "wamid.OUT2", "emoji": "👍"}
    )
    assert post(meta, notification(change([emoji]))).status_code == 200
    settle()
    assert len(graph.requests) == 2
    say(meta, ALICE, "wamid.IN2", "Mbengue")
    wait_until(lambda: graph.texts(ALICE)[-1].startswith("2/5"))


def test_changes_for_another_phone_number_are_skipped(meta, graph):
    other = change([text(ALICE, "wamid.X", "Bonjour")], phone_id="999")
    assert post(meta, notification(other)).status_code == 200
    settle()
    assert graph.requests == []


# -- addresses: wa_ids and business-scoped user ids -------------------------------------

BSUID = "US.13491208655302741918"  # Meta's documented example


def from_user(user_id: str, wamid: str, body: str) -> dict[str, Any]:
    """A text from a user who hides their number: `from_user_id`, no `from`."""
    return {
        "from_user_id": user_id,
        "id": wamid,
        "timestamp": "1717000000",
        "type": "text",
        "text": {"body": body},
    }


def test_senders_become_canonical_addresses():
    both = read_message(text(ALICE, "w1", "Bonjour") | {"from_user_id": BSUID})
    user = read_message(from_user(BSUID, "w2", "Bonjour"))
    assert both is not None and user is not None
    assert both.contact == ALICE_AT, "a number, when Meta gives one, comes first"
    assert user.contact == f"whatsapp-user:{BSUID}"
    unusable = text("Vodacom", "w3", "Promo") | {"from_user_id": "not a bsuid"}
    assert read_message(unusable) is None


def test_status_recipients_become_canonical_addresses():
    by_number = status("wamid.1", "sent")
    by_user_id = {k: v for k, v in status("wamid.2", "sent").items() if k != "recipient_id"}
    by_user_id["recipient_user_id"] = BSUID
    body = json.dumps(notification(change(statuses=[by_number, by_user_id]))).encode()
    recipients = [update.recipient for update in read_notification(body, PHONE_ID).statuses]
    assert recipients == [ALICE_AT, f"whatsapp-user:{BSUID}"]


def test_a_contact_known_only_by_user_id_is_answered_at_it(meta, graph, tmp_path):
    contacts = [{"profile": {"name": "Someone", "username": "@someone"}, "user_id": BSUID}]
    first = change([from_user(BSUID, "wamid.U1", "Bonjour")])
    first["value"]["contacts"] = contacts
    assert post(meta, notification(first)).status_code == 200
    wait_until(lambda: len(graph.requests) == 2)
    assert post(meta, notification(change([from_user(BSUID, "wamid.U2", "Mbengue")]))).is_success
    wait_until(lambda: len(graph.requests) == 3)
    assert [b["recipient"] for b in graph.bodies()] == [BSUID] * 3, "never a `to`"
    assert graph.texts(BSUID)[1].startswith("1/5") and graph.texts(BSUID)[2].startswith("2/5")
    key = contact_key(contact_hasher(b"test-secret"), f"whatsapp-user:{BSUID}")
    assert logged(tmp_path, "wamid.OUT1").contact_key == key


def test_a_message_with_no_usable_sender_is_refused_with_a_logged_200(meta, graph, caplog):
    caplog.set_level(logging.INFO, logger="palabre")
    nobody = text("Vodacom", "wamid.V1", "Promo")
    assert post(meta, notification(change([nobody]))).status_code == 200
    settle()
    assert graph.requests == []
    refused = [r for r in caplog.records if "without a usable sender" in r.getMessage()]
    assert [getattr(r, "wamid", None) for r in refused] == ["wamid.V1"]
    assert "Vodacom" not in caplog.text


# -- refused and malformed bodies --------------------------------------------------------


def test_unsigned_or_wrongly_signed_bodies_are_refused(meta, graph):
    payload = notification(change([text(ALICE, "wamid.S1", "Bonjour")]))
    body = json.dumps(payload).encode()
    flipped = body.replace(b"Bonjour", b"Bonjous")
    respaced = json.dumps(payload, indent=2).encode()
    wrong_key = sign(b"another-secret", body)
    assert post(meta, None, raw=body, signature="").status_code == 403
    assert post(meta, None, raw=body, signature=wrong_key).status_code == 403
    assert (
        post(meta, None, raw=body, signature=sign(APP_SECRET.encode(), body)[7:]).status_code == 403
    )
    assert (
        post(meta, None, raw=flipped, signature=sign(APP_SECRET.encode(), body)).status_code == 403
    )
    assert (
        post(meta, None, raw=respaced, signature=sign(APP_SECRET.encode(), body)).status_code == 403
    )
    settle()
    assert graph.requests == [], "a refused body must reach nothing"
    assert post(meta, None, raw=respaced).status_code == 200, "signed as sent, any spacing is fine"


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"\xff\xfe{}",
        b"[]",
        b"null",
        b"{}",
        b'{"object": "whatsapp_business_account", "entry": {}}',
        b'{"entry": ["x"]}',
        b'{"entry": [{"changes": {}}]}',
        b'{"entry": [{"changes": [{"field": "messages", "value": []}]}]}',
        b'{"entry": [{"changes": [{"value": {"messages": {}}}]}]}',
        b'{"entry": [{"changes": [{"value": {"messages": ["hi"]}}]}]}',
        b'{"entry": [{"changes": [{"value": {"messages": [{"from": "1", "type": "text"}]}}]}]}',
        b'{"entry": [{"changes": [{"value": {"messages": [{"from": "1", "id": "w", "type": "text", "text": "hi"}]}}]}]}',
        b'{"entry": [{"changes": [{"value": {"messages": [{"from": "1", "id": "w", "type": "location", "location": {"latitude": "x"}}]}}]}]}',
        b'{"entry": [{"changes": [{"value": {"statuses": {"id": "w"}}}]}]}',
        b'{"entry": [{"changes": [{"value": {"statuses": [{"status": "read"}]}}]}]}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"entry": [], "n": ' + b"9" * 5000 + b"}",
        b'{"entry": [], "n": NaN}',
        b'{"entry": [], "n": 1e999}',
        json.dumps(notification(change([text("\udfff", "wamid.LS1", "hi")]))).encode(),
        json.dumps(notification(change([text(ALICE, "wamid.\udfff", "hi")]))).encode(),
        json.dumps(notification(change([text(ALICE, "wamid.LS2", "hi")])))
        .encode()
        .replace(ALICE.encode(), b"\xed\xbf\xbf"),
    ],
    ids=lambda raw: None if len(raw) < 60 else f"{raw[:20]!r}...({len(raw)} bytes)",
)
def test_malformed_bodies_are_answered_400_never_500(meta, graph, raw):
    response = post(meta, None, raw=raw)
    assert response.status_code == 400, response.text


def test_unknown_fields_objects_and_changes_are_tolerated(meta, graph):
    hello = text(ALICE, "wamid.U1", "Bonjour") | {"context": {"forwarded": True}, "new_field": [1]}
    payload = notification(change([hello]) | {"extra": 1}) | {"whatever": {"x": 1}}
    payload["entry"].append(
        {"id": "1", "time": 1, "changes": [{"field": "account_update", "value": {"event": "X"}}]}
    )
    assert post(meta, payload).status_code == 200
    assert post(meta, {"object": "page", "entry": []}).status_code == 200
    wait_until(lambda: len(graph.requests) == 2)


class FailingFor(SQLiteSessionStore):
    """A real SQLite store whose commits fail for one contact, as when Redis goes away."""

    failing = ""  # that contact's key, as the engine stores it: set once the app started

    async def commit(self, contact, session, **options):
        if contact == self.failing:
            raise StoreUnavailable("the store is down")
        await super().commit(contact, session, **options)


def test_a_store_failure_answers_503_and_meta_s_retry_sends_every_reply_exactly_once(
    live_server, graph, tmp_path
):
    store = FailingFor(tmp_path / "sessions.db")
    app = app_for(settings_for(tmp_path, graph.url), store=store)
    payload = notification(
        change([text(ALICE, "wamid.A1", "Bonjour"), text(BOB, "wamid.B1", "Bonjour")])
    )
    with live_server(app) as server, httpx.Client(base_url=server.url) as client:
        store.failing = app.state.host.contact_key(BOB_AT)
        response = post(client, payload)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        wait_until(lambda: outbox_statuses(tmp_path) == {"sent": 2, "held": 2})
        assert len(graph.texts(ALICE)) == 2, "the committed turn's replies are sent"
        assert graph.texts(BOB) == [], "the turn that failed to commit sent nothing"

        store.failing = ""  # the store is back, and Meta retries the whole body
        assert post(client, payload).status_code == 200
        wait_until(lambda: outbox_statuses(tmp_path) == {"sent": 4})
    assert len(graph.texts(ALICE)) == 2, "Alice's message was processed once"
    assert len(graph.texts(BOB)) == 2, "Bob's turn ran again and its replies left once"


def outbox_statuses(tmp_path: Path) -> dict[str, int]:
    """How many outbox rows are in each status (`sent`: the provider accepted them)."""
    with sqlite3.connect(tmp_path / "data" / "palabre.db") as database:
        found = database.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status")
        return {status: count for status, count in found}


# -- sending -------------------------------------------------------------------------


@asynccontextmanager
async def started(
    settings: Settings,
    tmp_path: Path,
    retry_delays: tuple[float, ...] = RETRY_DELAYS,
    **host_options: Any,
):
    """A transport started on a Host of its own, as the web app's lifespan does."""
    engine = build_engine([UIC], settings)
    async with httpx.AsyncClient() as http:
        host = Host(engine, settings, http, **host_options)
        meta = MetaCloudTransport(retry_delays=retry_delays)
        try:
            await meta.startup(host)
            yield meta
        finally:
            await meta.shutdown()
            await engine.aclose()


@pytest.fixture
async def transport(graph, tmp_path):
    """A started transport whose Graph API is the fake one."""
    async with started(settings_for(tmp_path, graph.url), tmp_path) as meta:
        yield meta


def options(*titles: str) -> tuple[Option, ...]:
    return tuple(Option(str(i), title) for i, title in enumerate(titles, start=1))


def envelope(kind: str, content: dict[str, Any]) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": ALICE,
        "type": kind,
        kind: content,
    }


@pytest.mark.anyio
async def test_up_to_three_options_are_reply_buttons(transport, graph):
    delivery = await transport.send(
        Outbound(ALICE_AT, "Êtes-vous d'accord ?", "fr", options("Oui", "Non"))
    )
    assert (delivery.provider_id, delivery.status) == ("wamid.OUT1", "queued")
    buttons = [
        {"type": "reply", "reply": {"id": "1", "title": "Oui"}},
        {"type": "reply", "reply": {"id": "2", "title": "Non"}},
    ]
    assert graph.requests == [
        {
            "path": f"/v21.0/{PHONE_ID}/messages",
            "auth": f"Bearer {ACCESS_TOKEN}",
            "json": envelope(
                "interactive",
                {
                    "type": "button",
                    "body": {"text": "Êtes-vous d'accord ?"},
                    "action": {"buttons": buttons},
                },
            ),
        }
    ]
    assert (await transport.host.stores.messages.get("wamid.OUT1")).status == "accepted"


@pytest.mark.anyio
async def test_four_to_ten_options_are_a_list(transport, graph):
    await transport.send(
        Outbound(ALICE_AT, "Genre ?", "fr", options("Homme", "Femme", "Trans", "Autre"))
    )
    await transport.send(Outbound(ALICE_AT, "Gender?", "sw", options(*"abcdefghij")))
    french, other = graph.bodies()
    assert french == envelope(
        "interactive",
        {
            "type": "list",
            "body": {"text": "Genre ?"},
            "action": {"button": "Choisir", "sections": [{"rows": GENDER_ROWS}]},
        },
    )
    assert len(other["interactive"]["action"]["sections"][0]["rows"]) == 10
    assert other["interactive"]["action"]["button"] == "☰"


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        (Outbound(ALICE_AT, "Bonjour", "fr"), "text"),
        (Outbound(ALICE_AT, "Pick", "en", options(*"abcdefghijk")), "text"),  # 11: numbered
        (Outbound(ALICE_AT, "x" * 1025, "en", options("Yes", "No")), "text"),  # body too long
        (Outbound(ALICE_AT, "Pick", "en", options("A title of 22 letters!")), "list"),  # > 20
        (Outbound(ALICE_AT, "Pick", "en", options("A title longer than 24 letters")), "text"),
    ],
)
@pytest.mark.anyio
async def test_what_does_not_fit_falls_back(transport, graph, message, kind):
    await transport.send(message)
    body = graph.bodies()[0]
    assert body.get("interactive", {}).get("type", body["type"]) == kind
    if kind == "text":
        assert body["text"]["body"] == as_plain_text(message)


@pytest.mark.anyio
async def test_images_and_templates(transport, graph):
    await transport.send_image(ALICE_AT, media_id="1479537139650973", caption="Votre code")
    await transport.send_image(ALICE_AT, link="https://example.test/qr.png")
    parameters = [{"type": "body", "parameters": [{"type": "text", "text": "MBEIBR7DA1"}]}]
    await transport.send_template(ALICE_AT, "uic_reminder", "fr", parameters)
    assert graph.bodies() == [
        envelope("image", {"id": "1479537139650973", "caption": "Votre code"}),
        envelope("image", {"link": "https://example.test/qr.png"}),
        envelope(
            "template",
            {"name": "uic_reminder", "language": {"code": "fr"}, "components": parameters},
        ),
    ]
    with pytest.raises(ValueError, match="exactly one"):
        await transport.send_image(ALICE_AT)


@pytest.mark.parametrize(
    ("http_status", "code", "retryable", "says"),
    [
        (400, 130429, True, "retry later"),
        (400, 131056, True, "retry later"),
        (400, 131047, False, "send an approved template"),
        (400, 131026, False, "undeliverable"),
        (401, 190, False, "renew META_ACCESS_TOKEN"),
        (200, 131047, False, "template"),  # judged by error.code, whatever the HTTP status
        (400, 100, False, "Graph API error 100"),
    ],
)
@pytest.mark.anyio
async def test_errors_are_handled_by_their_code(
    transport, graph, http_status, code, retryable, says
):
    graph.answers.append((http_status, graph_error(code, f"(#{code}) Something", 2494010)))
    delivery = await transport.send(Outbound(ALICE_AT, "Bonjour", "fr"))
    assert (delivery.status, delivery.provider_id) == ("failed", None)
    assert (delivery.error_code, delivery.retryable) == (str(code), retryable)
    assert says in delivery.detail


@pytest.mark.anyio
async def test_a_bad_token_alerts_the_operator_without_showing_it(transport, graph, caplog):
    graph.answers.append(
        (401, graph_error(190, "Error validating access token: Session has expired", 463))
    )
    with caplog.at_level(logging.INFO):
        await transport.send(Outbound(ALICE_AT, "Bonjour", "fr"))
    alerts = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(alerts) == 1 and "META_ACCESS_TOKEN" in alerts[0].getMessage()
    assert ACCESS_TOKEN not in caplog.text and ALICE not in caplog.text


@pytest.mark.anyio
async def test_an_unreachable_graph_api_is_retryable(tmp_path):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    async with started(settings_for(tmp_path, closed), tmp_path) as meta:
        delivery = await meta.send(Outbound(ALICE_AT, "Bonjour", "fr"))
    assert (delivery.status, delivery.retryable) == ("failed", True)


@pytest.mark.anyio
async def test_the_graph_version_is_configurable(graph, tmp_path):
    settings = settings_for(tmp_path, graph.url)
    settings.options["META_GRAPH_VERSION"] = "v22.0"
    async with started(settings, tmp_path) as meta:
        await meta.send(Outbound(ALICE_AT, "Bonjour", "fr"))
    assert graph.requests[0]["path"] == f"/v22.0/{PHONE_ID}/messages"


def test_a_rate_limited_reply_is_retried_in_order(live_server, graph, tmp_path):
    graph.answers.append((400, graph_error(131056, "(#131056) Pair rate limit hit")))
    manager = make_plugin_manager(
        uic_plugins(Plugin(MetaCloudTransport(retry_delays=(0.05,)))),
        entry_points=False,
    )
    app = create_app([UIC], settings_for(tmp_path, graph.url), plugins=manager)
    with live_server(app) as server, httpx.Client(base_url=server.url) as client:
        say(client, ALICE, "wamid.IN1", "Bonjour")
        wait_until(lambda: len(graph.requests) == 3)
    welcome, retried, question = graph.texts(ALICE)
    assert welcome == retried and question.startswith("1/5")


# -- start-up -------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["META_APP_SECRET", "META_ACCESS_TOKEN", "META_VERIFY_TOKEN"])
@pytest.mark.anyio
async def test_without_its_secrets_the_transport_refuses_to_start(graph, tmp_path, missing):
    settings = settings_for(tmp_path, graph.url, **{missing: True})
    with pytest.raises(ConfigError, match=missing) as refused:
        async with started(settings, tmp_path):
            pass
    assert "--insecure-dev" in str(refused.value)
    assert "PALABRE_DISABLE_PLUGINS=meta_cloud" in str(refused.value)


@pytest.mark.anyio
async def test_insecure_dev_lets_it_start_without_them(graph, tmp_path, caplog):
    settings = settings_for(tmp_path, graph.url, META_APP_SECRET=True, META_VERIFY_TOKEN=True)
    async with started(settings, tmp_path, insecure_dev=True) as meta:
        assert meta.config.app_secret is None
    assert "INSECURE DEV MODE" in caplog.text


@pytest.mark.anyio
async def test_the_app_does_not_start_without_the_app_secret(graph, tmp_path):
    app = app_for(settings_for(tmp_path, graph.url, META_APP_SECRET=True))
    with pytest.raises(ConfigError, match="META_APP_SECRET"):
        async with app.router.lifespan_context(app):
            pass  # the lifespan runs the transport's startup, which refuses


def test_insecure_dev_starts_loudly_and_skips_the_signature(live_server, graph, tmp_path, caplog):
    app = app_for(settings_for(tmp_path, graph.url, META_APP_SECRET=True), insecure_dev=True)
    unsigned = notification(change([text(ALICE, "wamid.D1", "Bonjour")]))
    with caplog.at_level(logging.WARNING), live_server(app) as server:
        client = httpx.Client(base_url=server.url)
        assert post(client, unsigned, signature="").status_code == 200
        wait_until(lambda: len(graph.requests) == 2)
        client.close()
    assert "webhook signatures are NOT checked" in caplog.text


# -- privacy ---------------------------------------------------------------------------


def test_logs_carry_ids_never_phone_numbers_bodies_or_secrets(meta, graph, caplog):
    caplog.set_level(logging.INFO)
    for i, answer in enumerate(["Bonjour", "Mbengue", "Ibrahima", "1997", "DA"]):
        say(meta, ALICE, f"wamid.IN{i}", answer)
    post(meta, notification(change([reply(ALICE, "wamid.IN9", "list_reply", "1", "Homme")])))
    wait_until(lambda: "MBEIBR7DA1" in graph.texts(ALICE)[-1])
    post(meta, notification(change(statuses=[status("wamid.OUT1", "failed", 131047)])))
    graph.answers.append((401, graph_error(190, "Error validating access token")))
    before = len(graph.requests)
    say(meta, ALICE, "wamid.IN10", "aide")
    wait_until(lambda: len(graph.requests) == before + 2)
    settle()
    formatter = KeyValueFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert any("message accepted by Meta" in line and "wamid=wamid.OUT" in line for line in lines)
    assert any("OPERATOR ACTION NEEDED" in line for line in lines)
    private = [ALICE, "Mbengue", "Ibrahima", "MBEIBR7DA1", "Homme", ACCESS_TOKEN, APP_SECRET]
    leaks = [(word, line) for line in lines for word in private if word in line]
    assert leaks == []


# -- images: a QR code uploaded to /media, then sent by its media id -----------------------


async def stored_qr(meta: MetaCloudTransport) -> tuple[str, bytes]:
    """Put the QR PNG in the transport's media store: its palabre media id and its bytes."""
    png = qr_png(QR_CODE)
    return await meta.host.stores.media.put(png, "image/png"), png


def upload_of(png: bytes) -> dict[str, Any]:
    """The upload request Meta documents: multipart file, type and messaging_product."""
    return {
        "path": f"/v21.0/{PHONE_ID}/media",
        "auth": f"Bearer {ACCESS_TOKEN}",
        "content_type": "multipart/form-data",
        "form": {
            "messaging_product": "whatsapp",
            "type": "image/png",
            "file": ("image.png", "image/png", png),
        },
    }


def sent(body: dict[str, Any]) -> dict[str, Any]:
    return {"path": f"/v21.0/{PHONE_ID}/messages", "auth": f"Bearer {ACCESS_TOKEN}", "json": body}


@pytest.mark.anyio
async def test_an_image_is_uploaded_then_sent_by_id_with_the_text_as_caption(transport, graph):
    media_id, png = await stored_qr(transport)
    delivery = await transport.send(
        Outbound(ALICE_AT, "Votre code : MBEIBR7DA1", "fr", image=media_id)
    )
    assert graph.requests == [
        upload_of(png),
        sent(envelope("image", {"id": "MEDIA1", "caption": "Votre code : MBEIBR7DA1"})),
    ]
    assert decode_qr(graph.requests[0]["form"]["file"][2]) == QR_CODE
    assert (delivery.provider_id, delivery.status) == ("wamid.OUT2", "queued")
    assert (await transport.host.stores.messages.get("wamid.OUT2")).status == "accepted"


@pytest.mark.anyio
async def test_with_options_the_image_has_no_caption_and_the_buttons_follow(transport, graph):
    media_id, png = await stored_qr(transport)
    question = Outbound(ALICE_AT, "Est-ce bien vous ?", "fr", options("Oui", "Non"), image=media_id)
    delivery = await transport.send(question)
    buttons = [
        {"type": "reply", "reply": {"id": "1", "title": "Oui"}},
        {"type": "reply", "reply": {"id": "2", "title": "Non"}},
    ]
    assert graph.requests == [
        upload_of(png),
        sent(envelope("image", {"id": "MEDIA1"})),
        sent(
            envelope(
                "interactive",
                {
                    "type": "button",
                    "body": {"text": "Est-ce bien vous ?"},
                    "action": {"buttons": buttons},
                },
            )
        ),
    ]
    assert delivery.provider_id == "wamid.OUT2", "the image's wamid, like a first part"


@pytest.mark.anyio
async def test_a_text_too_long_for_a_caption_follows_the_image(transport, graph):
    media_id, _ = await stored_qr(transport)
    await transport.send(Outbound(ALICE_AT, "x" * 1025, "fr", image=media_id))
    await transport.send(Outbound(ALICE_AT, "", "fr", image=media_id))
    assert [(b["type"], b.get("image"), b.get("text")) for b in graph.bodies()] == [
        ("image", {"id": "MEDIA1"}, None),
        ("text", None, {"preview_url": False, "body": "x" * 1025}),
        ("image", {"id": "MEDIA4"}, None),
    ]


@pytest.mark.parametrize(
    ("code", "retryable", "says"),
    [(130429, True, "retry later"), (190, False, "renew META_ACCESS_TOKEN"), (100, False, "100")],
)
@pytest.mark.anyio
async def test_upload_errors_are_handled_by_their_code(transport, graph, code, retryable, says):
    media_id, _ = await stored_qr(transport)
    graph.upload_answers.append((400, graph_error(code, f"(#{code}) Upload refused")))
    delivery = await transport.send(Outbound(ALICE_AT, "Votre code", "fr", image=media_id))
    assert (delivery.status, delivery.error_code) == ("failed", str(code))
    assert (delivery.retryable, says in delivery.detail) == (retryable, True)
    assert graph.bodies() == [], "no message without its image"


@pytest.mark.anyio
async def test_a_failure_after_the_image_is_retried_alone_and_never_resends_it(graph, tmp_path):
    graph.answers += [(200, {"messages": [{"id": "wamid.IMAGE"}]})]
    graph.answers += [(400, graph_error(131056, "(#131056) Pair rate limit hit"))] * 2
    async with started(settings_for(tmp_path, graph.url), tmp_path, (0.01,)) as meta:
        media_id, _ = await stored_qr(meta)
        question = Outbound(
            ALICE_AT, "Est-ce bien vous ?", "fr", options("Oui", "Non"), image=media_id
        )
        delivery = await meta.send(question)
    assert [b["type"] for b in graph.bodies()] == ["image", "interactive", "interactive"]
    assert (delivery.status, delivery.error_code) == ("failed", "131056")
    assert delivery.retryable is False, "retrying the whole would send the image twice"


@pytest.mark.anyio
async def test_an_expired_image_is_sent_as_text_only(transport, graph, caplog):
    await transport.send(Outbound(ALICE_AT, "Votre code", "fr", image="gone-or-purged"))
    assert graph.requests == [sent(envelope("text", {"preview_url": False, "body": "Votre code"}))]
    assert "image expired or unknown" in caplog.text


def test_the_qr_card_flow_delivers_its_image_through_the_webhook(live_server, graph, tmp_path):
    manager = make_plugin_manager(
        [palabre.builtins, palabre_meta_cloud, palabre_qr], entry_points=False
    )
    app = create_app([qr_flow(tmp_path)], settings_for(tmp_path, graph.url), plugins=manager)
    with live_server(app) as server, httpx.Client(base_url=server.url) as client:
        say(client, ALICE, "wamid.Q1", "Hello")
        say(client, ALICE, "wamid.Q2", QR_CODE)
        wait_until(lambda: any(b["type"] == "image" for b in graph.bodies()))
    [upload] = graph.uploads()
    image = graph.bodies()[-1]
    assert image == envelope(
        "image", {"id": image["image"]["id"], "caption": f"Your code is {QR_CODE}."}
    )
    assert image["image"]["id"] == f"MEDIA{graph.requests.index(upload) + 1}"
    assert decode_qr(upload["form"]["file"][2]) == QR_CODE
