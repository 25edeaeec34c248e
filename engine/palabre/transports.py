"""Transports: how a provider's webhooks reach the engine, and how replies go back out.

A transport plugin returns Transport objects from the `register_transports` hook. The web
app mounts each transport's routes, calls `startup(host)` in its lifespan (where the
transport checks its configuration and may refuse to start), and `shutdown()` at the end.

Data flows one way: webhook → `host.receive(inbound)` → engine → outbound messages,
which the engine queues as outbox rows (palabre.outbox) before it commits the turn; the
outbox worker finds each row's transport with `host.transport_for(channel)` and calls
its `send`, unless the transport answered them inline (TwiML).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import httpx
from starlette.requests import Request
from starlette.routing import BaseRoute

from palabre.config import Settings
from palabre.errors import ConfigError
from palabre.runtime.engine import Engine
from palabre.runtime.messages import Inbound, Outbound, Reply
from palabre.stores.bundle import Stores


@dataclass(frozen=True)
class Delivery:
    """What a provider said about one outbound message.

    Without a provider id the send failed, and the flags say what the outbox does:
    `throttled` (we send too fast: later, no attempt used up), `unconfirmed` (the request
    may have gone out but no answer came: never resent blindly), `retryable` (a transient
    failure: retried with backoff), none (permanent). `detail` is a short reason with no
    personal data.
    """

    provider_id: str | None
    status: str  # queued, sent, failed
    error_code: str | None = None
    retryable: bool = False
    detail: str = ""
    throttled: bool = False
    unconfirmed: bool = False


def request_failed(exc: httpx.HTTPError, provider: str) -> Delivery:
    """The Delivery of a request that got no answer: retryable when it never left (no
    connection), unconfirmed when it may have reached the provider (a read timeout or a
    connection dropped after the request was written)."""
    never_sent = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
    name = type(exc).__name__
    if isinstance(exc, never_sent):
        return Delivery(None, "failed", retryable=True, detail=f"{provider} unreachable: {name}")
    detail = f"no answer from {provider} after the request was sent: {name}"
    return Delivery(None, "failed", error_code="no_answer", unconfirmed=True, detail=detail)


@runtime_checkable
class Transport(Protocol):
    """A channel such as Twilio SMS, WhatsApp through Meta, or the web simulator."""

    name: str

    def routes(self) -> list[BaseRoute]:
        """The HTTP routes this transport answers (webhooks, status callbacks, pages)."""

    async def startup(self, host: Host) -> None:
        """Check configuration; raise palabre.errors.ConfigError to refuse to start."""

    async def send(self, message: Outbound) -> Delivery:
        """Send one message outside a webhook reply (later parts, notifications)."""

    async def shutdown(self) -> None:
        """Release what startup took."""


@dataclass
class Host:
    """What the web app lends its transports: the engine, its durable stores (the message
    log and opt-outs are `stores.messages`, the outbox `stores.outbox`), the settings, one
    HTTP client, and the transports by name (for the outbox worker)."""

    engine: Engine
    settings: Settings
    http: httpx.AsyncClient
    insecure_dev: bool = False
    transports: dict[str, Transport] = field(default_factory=dict)

    def transport_for(self, channel: str) -> Transport:
        """The transport named `channel` ("twilio", "meta_cloud"...); ConfigError if none."""
        try:
            return self.transports[channel]
        except KeyError:
            raise ConfigError(f"no transport named {channel!r} is loaded") from None

    def channels(self) -> list[str]:
        """The names of the transports this process can send through."""
        return list(self.transports)

    @property
    def stores(self) -> Stores:
        """The engine's durable stores (ConfigError when no plugin made any)."""
        if self.engine.stores is None:
            raise ConfigError("no durable stores: no plugin implements make_stores")
        return self.engine.stores

    def public_url(self, request: Request) -> str:
        """The URL the provider called: PALABRE_PUBLIC_URL plus the path, behind a proxy."""
        base = self.settings.public_url
        if not base:
            return str(request.url)
        # From the scope as Starlette's URL reads it, without parsing the whole URL.
        path = request.scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
        query = _text(request.scope.get("query_string", b""))
        return base.rstrip("/") + path + (f"?{query}" if query else "")

    async def receive(self, inbound: Inbound, *, inline: bool = False) -> Reply:
        """Run the engine on one inbound message; its replies are outbox rows when this
        returns (StoreError propagates: answer 503). A transport that answers `inline`
        (TwiML) calls `answered_inline(reply)` once its answer is built."""
        return await self.engine.handle(inbound, inline=inline)

    async def answered_inline(self, reply: Reply) -> None:
        """The transport's answer carries the reply's rows: they are sent. The mark joins
        the next commit and the answer does not wait for it (Outbox.delivered_inline)."""
        if reply.uids:
            self.stores.outbox.delivered_inline(reply.uids)

    def contact_key(self, contact: str) -> str:
        return self.engine.contact_key(contact)

    async def media_url(self, media_id: str, *, absolute: bool = True) -> str | None:
        """The signed, expiring URL of a stored image (None when it is unknown or expired).

        Absolute (PALABRE_PUBLIC_URL + path) for providers that fetch it, or just the path
        for pages served by Palabre itself.
        """
        token = await self.stores.media.token(media_id)
        if token is None:
            return None
        base = (self.settings.public_url or "").rstrip("/") if absolute else ""
        return f"{base}/media/{token}.png"


def _text(query: bytes) -> str:
    """The query string as Starlette decodes it (UTF-8); bytes that are not UTF-8 (never
    sent by a provider) are kept as Latin-1, so they fail the signature instead of raising."""
    try:
        return query.decode()
    except UnicodeDecodeError:
        return query.decode("latin-1")
