"""`GET /metrics`, and the middleware that counts and times the webhook requests.

A webhook request is one to a transport's routes, found by the path's first segment
(`/twilio/status` is Twilio's, `/meta` Meta's, `/web/messages` the simulator's) and
labelled with the transport's name, as the sends are. Palabre's own routes (`/healthz`,
`/readyz`, `/media/...`, `/metrics`) and unknown paths are not webhooks: not counted.

Metrics reveal traffic volumes. When PALABRE_METRICS_TOKEN is set, `/metrics` answers
only `Authorization: Bearer <token>`, from anywhere. Otherwise it answers only loopback
clients whose request came through no proxy (no forwarding header): behind a proxy on the
same machine, every request would look local.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Iterable, Mapping

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from palabre.errors import StoreError
from palabre.metrics import CONTENT_TYPE, Metrics
from palabre.transports import Host

log = logging.getLogger("palabre.web")

LOOPBACK = frozenset({"127.0.0.1", "::1"})
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


class WebhookMetrics:
    """Pure ASGI middleware: counts and times the requests to the transports' routes."""

    def __init__(self, app: ASGIApp, metrics: Metrics, transports: Mapping[str, str]) -> None:
        self.app, self.metrics, self.transports = app, metrics, transports

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = self.transports.get(_segment(scope)) if scope["type"] == "http" else None
        if transport is None:
            await self.app(scope, receive, send)
            return
        status = 500  # an exception escaping the app is answered 500 further out

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        began = time.perf_counter()
        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.webhook(transport, status, time.perf_counter() - began)


def webhook_segments(routes: Iterable[tuple[str, BaseRoute]]) -> dict[str, str]:
    """The first path segment of each (transport name, route), mapped to the name."""
    found: dict[str, str] = {}
    for name, route in routes:
        segment = _first(getattr(route, "path", ""))
        if segment:  # the simulator's page at "/" is not a webhook
            found.setdefault(segment, name)
    return found


def _segment(scope: Scope) -> str:
    return _first(scope.get("path", ""))


def _first(path: str) -> str:
    return path.lstrip("/").split("/", 1)[0]


async def metrics(request: Request) -> Response:
    """The app's metrics in the Prometheus text format (see the module for who may read)."""
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    host: Host = request.app.state.host
    stores = host.stores
    depth = await _counted("outbox depth", stores.outbox.depth())
    events = await _counted("events waiting", stores.events.waiting())
    body = request.app.state.metrics.exposition(depth, events)
    return Response(body, media_type=CONTENT_TYPE)


async def _counted(what: str, count: Awaitable[dict[str, int]]) -> dict[str, int] | None:
    """The counts read for a gauge; None when the database fails (the other metrics still
    help most during an outage)."""
    try:
        return await count
    except StoreError as exc:
        log.warning("%s unavailable for /metrics: %s", what, type(exc).__name__)
        return None


def _refusal(request: Request) -> Response | None:
    """Why this request may not read the metrics, as a response; None when it may."""
    token = request.app.state.host.settings.metrics_token
    if token:
        given = request.headers.get("authorization", "")
        expected = f"Bearer {token}"
        if hmac.compare_digest(given.encode(), expected.encode()):
            return None
        headers = {"WWW-Authenticate": "Bearer"}
        return PlainTextResponse("a bearer token is needed", status_code=401, headers=headers)
    client = request.client.host if request.client else ""
    proxied = any(name in request.headers for name in FORWARDING_HEADERS)
    if client in LOOPBACK and not proxied:
        return None
    return PlainTextResponse(
        "metrics are served to loopback only; set PALABRE_METRICS_TOKEN to read them from"
        " elsewhere",
        status_code=403,
    )
