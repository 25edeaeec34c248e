"""The Twilio transport: SMS and WhatsApp webhooks in, TwiML or REST API calls out.

    POST /twilio          an inbound message; the reply is TwiML, one <Message> per body
                          (an image as <Media>, at its signed PALABRE_PUBLIC_URL address)
    POST /twilio/status   a status callback; recorded in the message log, answered 204

Both check `X-Twilio-Signature` (403 when forged or missing), answer 400 to a body
Twilio could not have sent, and let StoreError through (the app answers 503, and Twilio
retries). Logs carry the contact's keyed hash and the MessageSid, never a number or a body.

Inline replies are outbox rows too: the engine queues them (`inline`) before it commits
the turn, and they are marked sent once the TwiML is built. A redelivered inbound message
(a MessageSid already processed) is answered with the same replies again, from the
outbox, rather than with an empty answer. Everything else (later parts, notifications)
is sent by the outbox worker through `send`.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from palabre.errors import ConfigError
from palabre.outbox.windows import WINDOW_CLOSED
from palabre.render import one_line
from palabre.runtime.messages import Outbound
from palabre.transports import Delivery, Host
from palabre_twilio.config import TwilioConfig, load_sdk
from palabre_twilio.form import MalformedRequest, Params, read_form
from palabre_twilio.inbound import UnreachableSender, channel_of, to_inbound
from palabre_twilio.replies import Part, parts, twiml
from palabre_twilio.rest import post_message, post_template, validity_period
from palabre_twilio.signature import HEADER, is_signed
from palabre_twilio.status import read_status, record_status

log = logging.getLogger("palabre.twilio")


class TwilioTransport:
    """Twilio Programmable Messaging, for SMS and WhatsApp (`whatsapp:` addresses)."""

    name = "twilio"

    def __init__(self) -> None:
        self._host: Host | None = None
        self._config: TwilioConfig | None = None
        self._said_images_need_public_url = False

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/twilio", self.message_webhook, methods=["POST"]),
            Route("/twilio/status", self.status_webhook, methods=["POST"]),
        ]

    async def startup(self, host: Host) -> None:
        """Read the settings and load the SDK; refuse to start without the auth token."""
        config = TwilioConfig.from_settings(host.settings)
        load_sdk("twilio.request_validator")
        if config.token is None and host.insecure_dev:
            log.warning(
                "INSECURE DEV MODE: TWILIO_AUTH_TOKEN is not set, so Twilio signatures are "
                "NOT checked and anyone can post to /twilio; never expose this server"
            )
        else:
            config.check()
        self._host, self._config = host, config

    async def shutdown(self) -> None:
        """Forget the host; the HTTP client and the log belong to the app."""
        self._host = self._config = None

    async def message_webhook(self, request: Request) -> Response:
        """An inbound SMS or WhatsApp message: run the engine, answer with TwiML."""
        host, config = self._ready()
        try:
            inbound = to_inbound(await self._signed_form(request))
        except UnreachableSender:  # a signed message from a name or short code: nobody to answer
            return Response(twiml([], config.status_callback()), media_type="application/xml")
        except MalformedRequest as exc:
            return PlainTextResponse(exc.reason, status_code=exc.status_code)
        key = host.contact_key(inbound.contact)
        ids = {"contact": key, "message_sid": inbound.message_id, "channel": inbound.channel}
        log.info("twilio message received", extra=ids)
        reply = await host.receive(inbound, inline=True)  # a redelivery: the first replies
        replies: list[Part] = []
        for message in reply.messages:
            replies += parts(message, await self._media_url(message))
        images = sum(part.media_url is not None for part in replies)
        log.info("twilio reply", extra={**ids, "parts": len(replies), "images": images})
        answer = twiml(replies, config.status_callback())
        await host.answered_inline(reply)
        return Response(answer, media_type="application/xml")

    async def status_webhook(self, request: Request) -> Response:
        """A status callback: record it; send nothing."""
        host, _ = self._ready()
        try:
            update = read_status(await self._signed_form(request))
        except MalformedRequest as exc:
            return PlainTextResponse(exc.reason, status_code=exc.status_code)
        await record_status(host, update)
        return Response(status_code=204)

    async def _send_declared_template(
        self, message: Outbound, config: TwilioConfig, sender: str
    ) -> Delivery:
        """Outside the 24-hour window: the step's `template.twilio`, {content_sid,
        variables}, its variables rendered."""
        declared = (message.template or {}).get("twilio")
        if not isinstance(declared, dict) or not declared.get("content_sid"):
            detail = "outside the 24-hour window, and the step's template has no twilio: part"
            return Delivery(None, "failed", error_code=WINDOW_CLOSED, detail=detail)
        # One line each: WhatsApp refuses a template variable holding a newline or a tab.
        variables = {str(k): one_line(str(v)) for k, v in (declared.get("variables") or {}).items()}
        host = self._ready()[0]
        key = host.contact_key(message.contact)
        sid, validity = str(declared["content_sid"]), self._validity(message)
        delivery = await post_template(
            host.http, config, message.contact, sender, sid, variables, validity
        )
        if delivery.provider_id is None:
            log.warning(
                "twilio send failed", extra={"contact": key, "error_code": delivery.error_code}
            )
            return delivery
        # In the message log, so that its status callbacks (63015, delivered...) find it.
        await host.stores.messages.sent(delivery.provider_id, "twilio", key, status=delivery.status)
        log.info("twilio template sent", extra={"contact": key, "sid": delivery.provider_id})
        return delivery

    async def send(self, message: Outbound) -> Delivery:
        """Send `message` through the REST API, in as many parts as SMS needs."""
        host, config = self._ready()
        key = host.contact_key(message.contact)  # consent was checked by the outbox
        sender = self._sender(config, message.contact)
        if not (sender and config.account_sid and config.token):
            detail = "set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and the sender number to send"
            return Delivery(None, "failed", error_code="not_configured", detail=detail)
        if message.as_template:
            return await self._send_declared_template(message, config, sender)
        first: Delivery | None = None
        for part in parts(message, await self._media_url(message)):
            delivery = await post_message(
                host.http,
                config,
                message.contact,
                sender,
                part.body,
                part.media_url,
                self._validity(message),
            )
            if delivery.provider_id is None:
                log.warning(
                    "twilio send failed",
                    extra={"contact": key, "error_code": delivery.error_code},
                )
                # After a first part went out, resending the whole would repeat it.
                return delivery if first is None else _final(delivery)
            await host.stores.messages.sent(
                delivery.provider_id, "twilio", key, status=delivery.status
            )
            log.info("twilio message sent", extra={"contact": key, "sid": delivery.provider_id})
            first = first or delivery
        return first or Delivery(None, "failed", detail="the message has no text")

    def _validity(self, message: Outbound) -> str | None:
        """Twilio's ValidityPeriod for the message: what is left of its ttl, if it has one."""
        return validity_period(message.expires_at, self._ready()[0].engine.clock())

    async def _media_url(self, message: Outbound) -> str | None:
        """The absolute, signed URL Twilio fetches the message's image from; None: text only."""
        host, config = self._ready()
        if not message.image:
            return None
        if not config.public_url:
            if not self._said_images_need_public_url:
                log.warning(
                    "PALABRE_PUBLIC_URL is not set: images are left out of Twilio messages, "
                    "because Twilio can only fetch an image from an absolute public URL"
                )
                self._said_images_need_public_url = True
            return None
        url = await host.media_url(message.image)
        if url is None:
            key = host.contact_key(message.contact)
            log.warning("twilio image expired or unknown: text only", extra={"contact": key})
        return url

    def sender_for(self, address: str) -> str | None:
        """The number that sends to `address` (for the outbox's per-sender rate limit)."""
        return self._sender(self._ready()[1], address)

    @staticmethod
    def _sender(config: TwilioConfig, contact: str) -> str | None:
        whatsapp = channel_of(contact) == "whatsapp"
        return config.whatsapp_from if whatsapp else config.sms_from

    async def _signed_form(self, request: Request) -> Params:
        """The POST parameters, once their signature is checked (unless insecure dev)."""
        host, config = self._ready()
        params = await read_form(request)
        if config.token is None:  # only possible in insecure dev mode, said loudly at startup
            return params
        url = host.public_url(request)
        if not is_signed(config.token, url, params, request.headers.get(HEADER)):
            log.warning("twilio signature mismatch", extra={"path": request.url.path})
            raise MalformedRequest("invalid or missing X-Twilio-Signature", 403)
        return params

    def _ready(self) -> tuple[Host, TwilioConfig]:
        if self._host is None or self._config is None:
            raise ConfigError("the Twilio transport is not started: serve it with create_app")
        return self._host, self._config


def _final(delivery: Delivery) -> Delivery:
    """A failure after part of a message went out: final, never retried as a whole."""
    return replace(delivery, retryable=False, throttled=False)
