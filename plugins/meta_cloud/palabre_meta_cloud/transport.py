"""MetaCloudTransport: WhatsApp through Meta's Cloud API, as a palabre Transport.

Routes: `GET /meta` (webhook verification) and `POST /meta` (notifications), see webhook.
Sending: `send` for the engine's messages (text, reply buttons or a list), called by the
outbox worker (palabre.outbox), which retries and paces; `send_image` and `send_template`
for notifications. Every wamid Meta accepts goes to the message log, where status webhooks
move it (and its outbox row) forward (sent, delivered, read, failed).

An engine message with an image (a media store id) is sent in up to three requests: the
bytes are uploaded to `/{phone-number-id}/media`, the image is sent by Meta's media id
(its caption is the text when the text fits and there are no options), then the text and
options follow as usual when they did not fit in the caption. Only that follow-up is
retried here (`retry_delays`): the outbox retrying the whole would send the image twice.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from palabre.addresses import InvalidAddress
from palabre.outbox.windows import WINDOW_CLOSED
from palabre.runtime.messages import Outbound
from palabre.transports import Delivery, Host
from palabre_meta_cloud.compose import MAX_CAPTION, image_body, message_body, template_body
from palabre_meta_cloud.config import MetaConfig, missing_settings, read_config, refusal
from palabre_meta_cloud.graph import post_message, upload_media
from palabre_meta_cloud.inbound import CHANNEL
from palabre_meta_cloud.webhook import Webhook

# An address WhatsApp cannot reach (not a number or a WhatsApp user id): no request is made.
UNREACHABLE = Delivery(None, "failed", error_code="invalid_address", retryable=False)
RETRY_DELAYS = (2.0, 8.0)  # seconds before the 2nd and 3rd tries of an image's follow-up

log = logging.getLogger("palabre.meta_cloud")


class MetaCloudTransport:
    """The WhatsApp Cloud API channel: webhooks in, Graph API `/messages` out."""

    name = "meta_cloud"

    def __init__(self, *, path: str = "/meta", retry_delays: Sequence[float] = RETRY_DELAYS):
        self.path = path
        self.retry_delays = tuple(retry_delays)
        self._webhook: Webhook | None = None
        self._host: Host | None = None
        self._config: MetaConfig | None = None

    @property
    def host(self) -> Host:
        if self._host is None:
            raise RuntimeError("MetaCloudTransport used before startup(host)")
        return self._host

    @property
    def config(self) -> MetaConfig:
        if self._config is None:
            raise RuntimeError("MetaCloudTransport used before startup(host)")
        return self._config

    def routes(self) -> list[BaseRoute]:
        return [
            Route(self.path, self._verify, methods=["GET"]),
            Route(self.path, self._receive, methods=["POST"]),
        ]

    async def _verify(self, request: Request) -> Response:
        return await self.webhook.verify(request)

    async def _receive(self, request: Request) -> Response:
        return await self.webhook.receive(request)

    @property
    def webhook(self) -> Webhook:
        if self._webhook is None:
            raise RuntimeError("MetaCloudTransport used before startup(host)")
        return self._webhook

    async def startup(self, host: Host) -> None:
        """Read the settings; refuse to start without them unless in insecure dev mode."""
        config = read_config(host.settings)
        missing = missing_settings(config)
        if missing and not host.insecure_dev:
            raise refusal(missing)
        if missing:
            log.warning(
                "INSECURE DEV MODE: Meta transport started without %s: %s",
                ", ".join(missing),
                "; ".join(_consequences(config)),
            )
        self._host, self._config = host, config
        self._webhook = Webhook(config, host)

    async def send(self, message: Outbound) -> Delivery:
        """Send an engine message: its image first if any, then text, buttons or a list;
        outside the 24-hour window (`as_template`), its approved template instead."""
        if message.as_template:
            return await self._send_declared_template(message)
        if message.image:
            return await self._send_with_image(message, message.image)
        return await self._post(message.contact, lambda: message_body(message))

    async def _send_with_image(self, message: Outbound, media_id: str) -> Delivery:
        """Upload, send the image, then what its caption could not say.

        A failure up to the image is returned as it is, so the outbox may retry the whole;
        what follows the image is retried here and never makes the outbox resend the image.
        """
        without_image = replace(message, image=None)
        item = await self.host.stores.media.get(media_id)
        if item is None:
            key = self.host.contact_key(message.contact)
            log.warning("image expired or unknown: sent as text only", extra={"contact": key})
            return await self.send(without_image)
        uploaded = await upload_media(
            self.host.http, self.config, item.data, item.content_type, _filename(item.content_type)
        )
        if uploaded.provider_id is None:
            return uploaded
        caption = _caption(message)
        image = await self._post(
            message.contact,
            lambda: image_body(message.contact, media_id=uploaded.provider_id, caption=caption),
        )
        if image.provider_id is None or caption or not (message.text or message.options):
            return image
        rest = await with_retries(
            lambda: self._post(message.contact, lambda: message_body(without_image)),
            self.retry_delays,
        )
        if rest.provider_id:
            return image
        return replace(rest, retryable=False, throttled=False)  # never resend the image

    async def send_image(
        self,
        contact: str,
        media_id: str | None = None,
        link: str | None = None,
        caption: str | None = None,
    ) -> Delivery:
        """Send an image by uploaded media id or by public link."""
        return await self._post(contact, lambda: image_body(contact, media_id, link, caption))

    async def send_template(
        self,
        contact: str,
        name: str,
        language: str,
        components: list[dict[str, Any]] | None = None,
    ) -> Delivery:
        """Send an approved template (needed more than 24 hours after the last message)."""
        return await self._post(contact, lambda: template_body(contact, name, language, components))

    async def _send_declared_template(self, message: Outbound) -> Delivery:
        """The step's `template.meta`: {name, language, components}, parameters rendered."""
        declared = (message.template or {}).get("meta")
        if not isinstance(declared, dict) or not declared.get("name"):
            detail = "outside the 24-hour window, and the step's template has no meta: part"
            return Delivery(None, "failed", error_code=WINDOW_CLOSED, detail=detail)
        language = str(declared.get("language") or message.language)
        components = declared.get("components")
        return await self.send_template(
            message.contact, str(declared["name"]), language, components
        )

    def sender_for(self, address: str) -> str | None:
        """The phone number id that sends (for the outbox's per-sender rate limit)."""
        return self.config.phone_number_id

    async def shutdown(self) -> None:
        self._host = self._webhook = None

    async def _post(self, contact: str, compose: Callable[[], dict[str, Any]]) -> Delivery:
        """Compose the request body and post it; no request for an unreachable address."""
        host = self.host
        try:
            body = compose()
        except InvalidAddress:
            return UNREACHABLE
        delivery = await post_message(host.http, self.config, body)
        key = host.contact_key(contact)
        fields = {"contact": key, "kind": body["type"], "wamid": delivery.provider_id}
        if delivery.provider_id:
            await host.stores.messages.sent(delivery.provider_id, CHANNEL, key, status="accepted")
            log.info("message accepted by Meta", extra=fields)
        else:
            fields |= {"code": delivery.error_code, "retryable": delivery.retryable}
            log.warning("message not sent: %s", delivery.detail, extra=fields)
        return delivery


async def with_retries(
    attempt: Callable[[], Awaitable[Delivery]], delays: Sequence[float]
) -> Delivery:
    """Try, and try again after each delay while the failure is retryable or throttled."""
    delivery = await attempt()
    for delay in delays:
        if delivery.provider_id or delivery.unconfirmed:
            break
        if not (delivery.retryable or delivery.throttled):
            break
        await asyncio.sleep(delay)
        delivery = await attempt()
    return delivery


def _caption(message: Outbound) -> str | None:
    """The text as the image's caption, when there are no options and it fits."""
    fits = 0 < len(message.text) <= MAX_CAPTION
    return message.text if fits and not message.options else None


def _filename(content_type: str) -> str:
    return "image" + (mimetypes.guess_extension(content_type) or "")


def _consequences(config: MetaConfig) -> list[str]:
    """What does not work with the settings missing, said loudly in insecure dev mode."""
    said = []
    if config.app_secret is None:
        said.append("webhook signatures are NOT checked, anyone can post to /meta")
    if config.verify_token is None:
        said.append("webhook verification is always refused")
    if not config.can_send:
        said.append("replies cannot be sent")
    return said
