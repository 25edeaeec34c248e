"""What the Meta WhatsApp Cloud API tests share: a fake Graph API, webhook bodies, the apps.

Webhook bodies follow Meta's documented notification shapes and are signed over the
exact bytes sent. Replies go to `FakeGraph` (a small Starlette app) that records every
request and answers like Meta, documented error JSON included. Palabre's HTTP client
reaches it through `httpx.ASGITransport`, with no socket; the webhook tests serve
Palabre itself for real on loopback.

A webhook's replies are outbox rows before its 200 is sent, so what a webhook did not
send is read from the outbox (`outbox_statuses`), never waited for.

Also the fixtures (`graph`, `meta`, `transport`) the tests import.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
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

import palabre_meta_cloud
from palabre.bootstrap import build_engine
from palabre.config import Settings
from palabre.hookspecs import hookimpl
from palabre.plugins import make_plugin_manager
from palabre.runtime.messages import Option
from palabre.stores.bundle import open_stores
from palabre.transports import Host
from palabre.web.app import create_app
from palabre_meta_cloud import MetaCloudTransport
from palabre_meta_cloud.signature import sign
from palabre_meta_cloud.transport import RETRY_DELAYS

UIC = Path(__file__).parent.parent / "flows" / "uic.yaml"
APP_SECRET = "test-app-secret"
ACCESS_TOKEN = "EAAtest-access-token"
VERIFY_TOKEN = "test-verify-token"
PHONE_ID = "106540352242922"
ALICE, BOB = "243810000001", "243810000002"  # wa_ids, as Meta writes them
ALICE_AT, BOB_AT = f"whatsapp:+{ALICE}", f"whatsapp:+{BOB}"  # their canonical addresses
BSUID = "US.13491208655302741918"  # Meta's documented example
GRAPH_URL = "http://graph.test"  # META_API_BASE: FakeGraph, reached without a socket
GENDER_ROWS = [
    {"id": "1", "title": "Homme"},
    {"id": "2", "title": "Femme"},
    {"id": "3", "title": "Trans"},
    {"id": "4", "title": "Autre"},
]


# -- a fake Graph API ------------------------------------------------------------------


class FakeGraph:
    """Records each /messages and /media request; answers with a new wamid or media id, or
    with the answers queued in `answers` (/messages) and `upload_answers` (/media)."""

    def __init__(self) -> None:
        self.url = GRAPH_URL  # META_API_BASE for an app whose client comes from client()
        self.requests: list[dict[str, Any]] = []
        self.answers: list[tuple[int, dict[str, Any]]] = []
        self.upload_answers: list[tuple[int, dict[str, Any]]] = []
        self.app = Starlette(
            routes=[
                Route("/{version}/{phone}/messages", self.messages, methods=["POST"]),
                Route("/{version}/{phone}/media", self.media, methods=["POST"]),
            ]
        )

    def asgi(self) -> httpx.ASGITransport:
        """The transport that reaches this fake in-process, with no socket."""
        return httpx.ASGITransport(app=self.app)

    def client(self) -> httpx.AsyncClient:
        """An HTTP client for Palabre that reaches this fake (no socket, so nothing to close)."""
        return httpx.AsyncClient(transport=self.asgi())

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


@pytest.fixture
def graph() -> FakeGraph:
    return FakeGraph()


# -- the app and the transport under test -------------------------------------------------


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
def meta(live_server, graph, tmp_path) -> Iterator[httpx.Client]:
    """An httpx client on the palabre app serving the UIC flow through the Meta transport."""
    app = app_for(settings_for(tmp_path, graph.url), http=graph.client())
    with live_server(app) as server, httpx.Client(base_url=server.url) as client:
        yield client


@asynccontextmanager
async def started(
    settings: Settings,
    tmp_path: Path,
    retry_delays: tuple[float, ...] = RETRY_DELAYS,
    http_transport: httpx.AsyncBaseTransport | None = None,
    **host_options: Any,
):
    """A transport started on a Host of its own, as the web app's lifespan does; its
    requests go through `http_transport` (a fake's `asgi()`), else over the network."""
    engine = build_engine([UIC], settings)
    async with httpx.AsyncClient(transport=http_transport) as http:
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
    settings = settings_for(tmp_path, graph.url)
    async with started(settings, tmp_path, http_transport=graph.asgi()) as meta:
        yield meta


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the fake Graph API did not get what was expected"
        time.sleep(0.02)


def outbox_statuses(tmp_path: Path) -> dict[str, int]:
    """How many outbox rows are in each status (`sent`: the provider accepted them)."""
    with sqlite3.connect(tmp_path / "data" / "palabre.db") as database:
        found = database.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status")
        return {status: count for status, count in found}


def outbox_rows(tmp_path: Path) -> int:
    """How many outbox rows there are: every reply ever queued, sent or not."""
    return sum(outbox_statuses(tmp_path).values())


def outbox_settled(tmp_path: Path) -> bool:
    """Whether the outbox worker is done with every row (none held, queued or sending)."""
    return not {"held", "queued", "sending"} & outbox_statuses(tmp_path).keys()


# -- webhook bodies, as Meta documents them ---------------------------------------------


# When the test contact wrote, as Meta says: the start of this test run. The 24-hour window
# counts from it (palabre.outbox.windows), so a fixed date in the past would shut it.
SENT = str(int(time.time()))


def message(sender: str, wamid: str, kind: str, **content: Any) -> dict[str, Any]:
    return {"from": sender, "id": wamid, "timestamp": SENT, "type": kind, **content}


def text(sender: str, wamid: str, body: str) -> dict[str, Any]:
    return message(sender, wamid, "text", text={"body": body})


def from_user(user_id: str, wamid: str, body: str) -> dict[str, Any]:
    """A text from a user who hides their number: `from_user_id`, no `from`."""
    return {
        "from_user_id": user_id,
        "id": wamid,
        "timestamp": SENT,
        "type": "text",
        "text": {"body": body},
    }


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


# -- what the transport sends ---------------------------------------------------------------


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
