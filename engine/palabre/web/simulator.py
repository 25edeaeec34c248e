"""The web simulator: a page at `/` where anyone can chat with a loaded flow, no credentials.

It is the `web` transport. The page (plain HTML, CSS and JS from `static/`) asks
`GET /web/flows` for the flows and their languages, then posts each message to
`POST /web/messages` and shows the reply it gets back inline. Each browser tab has its own
random session id; the contact is `web:<session>:<flow>`, so a conversation always belongs
to the flow it was started in. A message's image comes as `image_url`, the signed,
expiring `/media/<token>.png` path on this same server, which the page's CSP allows. It is
a development tool: it needs no secret, but it is no place for real personal data.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from palabre.flow.model import Flow
from palabre.hookspecs import hookimpl
from palabre.i18n.language import LANGUAGE_NAMES
from palabre.runtime.engine import Engine
from palabre.runtime.messages import Inbound, Outbound, Reply
from palabre.transports import Delivery, Host, Transport
from palabre.web.body import BodyError, parse_json, read_body

STATIC = Path(__file__).parent / "static"
MAX_TEXT = 4096
MAX_BODY_BYTES = 32 * 1024  # a 4096-character text at 4 UTF-8 bytes each, and the rest
SESSION_ID = re.compile(r"[A-Za-z0-9-]{8,64}")
MESSAGE_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class BadRequest(ValueError):
    """A simulator request the page would never send: answered 400 with its reason."""


@dataclass(frozen=True)
class WebMessage:
    """One validated `POST /web/messages` body."""

    flow: str
    lang: str
    session: str
    text: str = ""
    reply_id: str | None = None
    message_id: str | None = None

    @classmethod
    def parse(cls, body: Any, engine: Engine) -> WebMessage:
        """Check `body` (decoded JSON) against the loaded flows; raise BadRequest if wrong."""
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        flow = engine.flows.get(_string(body, "flow", required=True))
        if flow is None:
            raise BadRequest(f"unknown flow (known: {', '.join(engine.flows)})")
        lang = _string(body, "lang", required=True)
        if lang not in flow.settings.locales:
            raise BadRequest(f"unknown language (known: {', '.join(flow.settings.locales)})")
        session = _string(body, "session", required=True)
        if not SESSION_ID.fullmatch(session):
            raise BadRequest("session must be 8 to 64 letters, digits or dashes")
        text, reply_id = _string(body, "text"), _string(body, "reply_id") or None
        if len(text) > MAX_TEXT:
            raise BadRequest(f"text is longer than {MAX_TEXT} characters")
        if not text.strip() and not reply_id:
            raise BadRequest("send a text or a reply_id")
        message_id = _string(body, "id") or None
        if message_id and not MESSAGE_ID.fullmatch(message_id):
            raise BadRequest("id must be up to 64 letters, digits or dashes")
        return cls(flow.id, lang, session, text, reply_id, message_id)

    def inbound(self) -> Inbound:
        """The engine's view of this message, from contact `web:<session>:<flow>`."""
        contact = f"web:{self.session}:{self.flow}"
        message_id = f"{contact}:{self.message_id}" if self.message_id else None
        return Inbound(
            contact,
            self.text,
            channel="web",
            message_id=message_id,
            reply_id=self.reply_id,
            language=self.lang,
            flow=self.flow,
            transport="web",
        )


def _string(body: dict[str, Any], key: str, *, required: bool = False) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise BadRequest(f"{key} must be a {'non-empty ' if required else ''}string")
    if len(value) > MAX_TEXT:
        raise BadRequest(f"{key} is longer than {MAX_TEXT} characters")
    return value


class SecureStaticFiles(StaticFiles):
    """The page's files with its security headers (so a browser never sniffs a type),
    answered only while `enabled()`: 404 otherwise, like the simulator's other routes."""

    def __init__(self, enabled: Callable[[], bool]) -> None:
        super().__init__(directory=STATIC)
        self.enabled = enabled

    async def get_response(self, path: str, scope: Scope) -> Response:
        if not self.enabled():
            return PlainTextResponse(SIMULATOR_OFF, status_code=404)
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


class WebSimulator:
    """The `web` transport: the chat page and its two JSON endpoints. Replies are inline."""

    name = "web"

    def __init__(self) -> None:
        self._host: Host | None = None
        self.enabled = False

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self._when_enabled(self.page), methods=["GET"]),
            Route("/web/flows", self._when_enabled(self.flows), methods=["GET"]),
            Route("/web/messages", self._when_enabled(self.messages), methods=["POST"]),
            Mount("/web/static", app=SecureStaticFiles(lambda: self.enabled), name="web-static"),
        ]

    async def startup(self, host: Host) -> None:
        """Keep the host; answer only in dev mode or when PALABRE_SIMULATOR is true.

        The simulator runs real flows against the real stores without credentials, so a
        production server does not offer it unless asked to.
        """
        self._host = host
        wanted = (host.settings.option("PALABRE_SIMULATOR") or "").lower()
        self.enabled = host.insecure_dev or wanted in {"1", "true", "yes", "on"}

    def _when_enabled(
        self, endpoint: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            if not self.enabled:
                return PlainTextResponse(SIMULATOR_OFF, status_code=404)
            return await endpoint(request)

        return guarded

    async def send(self, message: Outbound) -> Delivery:
        return Delivery(None, "failed", detail="the web simulator only replies inline")

    async def shutdown(self) -> None:
        self._host = None

    @property
    def host(self) -> Host:
        if self._host is None:
            raise RuntimeError("the web simulator was not started: call startup(host) first")
        return self._host

    async def page(self, request: Request) -> Response:
        """The chat page."""
        return FileResponse(STATIC / "index.html", headers=SECURITY_HEADERS)

    async def flows(self, request: Request) -> Response:
        """The loaded flows, each with its languages, for the page's selects."""
        return JSONResponse([_describe(flow) for flow in self.host.engine.flows.values()])

    async def messages(self, request: Request) -> Response:
        """Run one message through the engine and answer the reply's messages."""
        try:
            body = parse_json(await read_body(request, MAX_BODY_BYTES))
            message = WebMessage.parse(body, self.host.engine)
        except BodyError as exc:
            return JSONResponse({"error": exc.reason}, status_code=exc.status_code)
        except BadRequest as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        reply = await self.host.receive(message.inbound(), inline=True)
        answer = await _reply_json(reply, self.host)
        await self.host.answered_inline(reply)
        return JSONResponse(answer, headers={"Cache-Control": "no-store"})


def _describe(flow: Flow) -> dict[str, Any]:
    locales = list(flow.settings.locales)
    return {
        "id": flow.id,
        "title": flow.title,
        "locales": locales,
        "default_locale": flow.settings.default_locale,
        "language_names": {code: LANGUAGE_NAMES.get(code, code) for code in locales},
    }


async def _reply_json(reply: Reply, host: Host) -> dict[str, Any]:
    return {
        "messages": [
            {
                "text": message.text,
                "options": [{"id": o.id, "title": o.title} for o in message.options],
                "language": message.language,
                "image_url": await _image_path(message, host),
            }
            for message in reply.messages
        ]
    }


async def _image_path(message: Outbound, host: Host) -> str | None:
    """The image's URL on this server, relative like every URL the page uses."""
    return await host.media_url(message.image, absolute=False) if message.image else None


SIMULATOR_OFF = (
    "the web simulator is off: start with --insecure-dev, or set PALABRE_SIMULATOR=true "
    "to offer it (it runs flows for anyone who can reach this server)"
)


@hookimpl(trylast=True)
def register_transports() -> list[Transport]:
    """The `web` plugin: block it entirely with PALABRE_DISABLE_PLUGINS=web."""
    return [WebSimulator()]
