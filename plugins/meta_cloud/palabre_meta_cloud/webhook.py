"""The `/meta` webhook: verification (GET) and notifications (POST).

A POST is answered in this order:
0. 413 for a body over MAX_BODY_BYTES, declared or counted while it streams in, before
   anything else: an unsigned stranger can never make the server hold more than that;
1. 403 unless `X-Hub-Signature-256` signs the raw body with META_APP_SECRET;
2. 400 unless the whole body is JSON within palabre.web.body's bounds (depth, integer
   length, finite numbers, no lone surrogate) and shaped like a Meta notification.
   Nothing of it is processed, and no exception from it can become a 500;
3. statuses go to the message log (they never trigger a reply); error 131050 (the user
   stopped marketing messages) withdraws their broadcast consent;
4. messages go to the engine one after the other, in the order of the body;
5. the engine queues each turn's replies as outbox rows before it commits the turn, and
   the 200 follows; the outbox worker sends them, so slow sends never make Meta retry
   and a crash, before or after the 200, loses nothing. If a store fails, the answer is
   503 so that Meta retries; the turns already committed are not run again.

A body of up to 3 MB may hold tens of thousands of messages or statuses. It never holds
the event loop: it is parsed in a worker thread (linear in its size), and the event loop
gets a turn between each status written, so health probes and other contacts go on.

Why 400 and not a logged 200 for a signed body that cannot be used: Meta only sends
bounded, valid UTF-8 JSON, so such a body is either forged with a leaked secret or one
our checks are wrong about (a new, deeper field). In both cases the refusal is cheap (no
engine work, one warning log line with the reason), and Meta keeps a notification that
got no 200 and retries it, so a Palabre fixed meanwhile still gets its messages; a 200
would drop them for good.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from palabre.errors import StoreError
from palabre.purposes import BROADCAST
from palabre.transports import Host
from palabre.web.body import BodyError, read_body
from palabre.web.errors import store_failed
from palabre_meta_cloud.config import MetaConfig
from palabre_meta_cloud.error_codes import handling_for
from palabre_meta_cloud.inbound import CHANNEL
from palabre_meta_cloud.payload import Notification, PayloadError, StatusUpdate, read_notification
from palabre_meta_cloud.signature import signature_matches, token_matches

log = logging.getLogger("palabre.meta_cloud")
MAX_BODY_BYTES = 3 * 1024 * 1024  # Meta's webhook payloads are at most 3 MB
MAX_CODE_DIGITS = 9  # Meta's error codes have at most 6 digits


class Webhook:
    """The HTTP endpoints of the Meta transport, for one configured phone number id."""

    def __init__(self, config: MetaConfig, host: Host) -> None:
        self.config = config
        self.host = host

    async def verify(self, request: Request) -> Response:
        """Echo `hub.challenge` when Meta subscribes with our verify token; else 403."""
        query = request.query_params
        expected = self.config.verify_token
        if (
            query.get("hub.mode") == "subscribe"
            and token_matches(expected, query.get("hub.verify_token"))
            and "hub.challenge" in query
        ):
            log.info("webhook verified by Meta")
            return PlainTextResponse(query["hub.challenge"])
        log.warning("webhook verification refused: wrong mode or verify token")
        return PlainTextResponse("verification refused", status_code=403)

    async def receive(self, request: Request) -> Response:
        """Check, parse and process one notification (see the module docstring)."""
        try:
            body = await read_body(request, MAX_BODY_BYTES)
        except BodyError as exc:
            log.warning("webhook refused: %s", exc.reason)
            return PlainTextResponse(exc.reason, status_code=exc.status_code)
        if not self._signed(body, request.headers.get("X-Hub-Signature-256")):
            log.warning("webhook refused: missing or wrong X-Hub-Signature-256")
            return PlainTextResponse("signature refused", status_code=403)
        try:
            phone_number_id = self.config.phone_number_id
            notification = await asyncio.to_thread(read_notification, body, phone_number_id)
        except PayloadError as exc:
            log.warning("webhook refused: %s", exc)
            return PlainTextResponse(f"malformed notification: {exc}", status_code=400)
        log.info(
            "webhook received",
            extra={
                "messages": len(notification.inbounds),
                "statuses": len(notification.statuses),
                "skipped": notification.skipped,
            },
        )
        await self._record_statuses(notification.statuses)
        return await self._converse(request, notification)

    def _signed(self, body: bytes, header: str | None) -> bool:
        secret = self.config.app_secret
        if secret is None:  # insecure dev only: startup refused otherwise, loudly
            return True
        return signature_matches(secret, body, header)

    async def _converse(self, request: Request, notification: Notification) -> Response:
        try:
            for inbound in notification.inbounds:
                await self.host.receive(inbound)  # its replies are outbox rows
        except StoreError as exc:
            return await store_failed(request, exc)
        return PlainTextResponse("ok")

    async def _record_statuses(self, updates: list[StatusUpdate]) -> None:
        host = self.host
        for update in updates:
            key = host.contact_key(update.recipient) if update.recipient else ""
            await host.stores.messages.status(
                update.wamid, update.status, update.error_code, channel=CHANNEL, contact_key=key
            )
            if update.error_code == STOPPED_MARKETING and key:
                await host.stores.consent.record(
                    key,
                    BROADCAST,
                    False,
                    "provider",
                    channel="whatsapp",
                    detail=STOPPED_MARKETING,
                    key=f"meta:{STOPPED_MARKETING}:{update.wamid}",
                )
            if update.status == "failed":
                handling = handling_for(error_number(update.error_code))
                log.warning(
                    "message failed: %s",
                    handling.detail,
                    extra={"wamid": update.wamid, "code": update.error_code, "contact": key},
                )
            await asyncio.sleep(0)  # a turn for everyone else, even if the store never waits


# The user stopped marketing messages from this business: an opt-out of broadcasts.
STOPPED_MARKETING = "131050"


def error_number(code: str | None) -> int | None:
    """Meta's error code as a number; None when it is not one (ASCII digits, not `²` or
    `١`, which str.isdigit() accepts, and not thousands of them, which int() refuses)."""
    if not code or not (code.isascii() and code.isdigit()) or len(code) > MAX_CODE_DIGITS:
        return None
    return int(code)
