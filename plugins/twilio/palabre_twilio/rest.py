"""Send one message through Twilio's REST API (Messages.json) and read the answer.

A message has a `Body`, a `MediaUrl` (a public URL Twilio fetches the image from), or both.

Twilio answers 201 with the message's `sid` and `status`, or an error JSON with `code`,
`message`, `more_info` and `status`. The error message can quote the phone number, so
a Delivery keeps only the code and the documentation link. HTTP 429 and error 20429
(too many requests) are `throttled`: the outbox tries later without using up an attempt;
5xx are retryable; a request that got no answer after it was written is `unconfirmed`.

`To` is the contact's canonical address in Twilio's form (`twilio_to`): `whatsapp:+E164`
or `+E164`. An address Twilio cannot reach (a WhatsApp user id with no number, text that
is no address) fails without a request, for good.
"""

from __future__ import annotations

import json
import math
from typing import Any

import httpx

from palabre.addresses import WHATSAPP, Address, InvalidAddress, read_address
from palabre.transports import Delivery, request_failed
from palabre_twilio.config import TwilioConfig
from palabre_twilio.status import HINTS

INVALID_ADDRESS = "invalid_address"
TOO_MANY_REQUESTS = "20429"
MAX_VALIDITY = 36_000  # seconds: Twilio refuses a longer ValidityPeriod (error 21624)


def twilio_to(address: Address) -> str:
    """The address as Twilio writes it: `whatsapp:+E164` on WhatsApp, `+E164` for SMS."""
    if address.phone is None:
        raise InvalidAddress("Twilio reaches phone numbers only, not this kind of address")
    return f"whatsapp:{address.phone}" if address.scheme == WHATSAPP else address.phone


async def post_message(
    http: httpx.AsyncClient,
    config: TwilioConfig,
    to: str,
    sender: str,
    body: str,
    media_url: str | None = None,
    validity: str | None = None,
) -> Delivery:
    """POST one message (a body, an image URL or both) to the contact address `to`; with
    a `validity` (see `validity_period`), Twilio drops it if still queued by then.

    A Delivery says if Twilio took it.
    """
    content: dict[str, str] = {}
    if body or not media_url:
        content["Body"] = body
    if media_url:
        content["MediaUrl"] = media_url
    return await _post(http, config, to, sender, content, validity)


async def post_template(
    http: httpx.AsyncClient,
    config: TwilioConfig,
    to: str,
    sender: str,
    content_sid: str,
    variables: dict[str, str],
    validity: str | None = None,
) -> Delivery:
    """POST an approved template (Content API): `ContentSid` and its `ContentVariables`
    (a JSON object keyed "1", "2"...), and no Body, as Twilio asks."""
    content = {"ContentSid": content_sid}
    if variables:
        content["ContentVariables"] = json.dumps(variables, ensure_ascii=False)
    return await _post(http, config, to, sender, content, validity)


def validity_period(expires_at: float | None, now: float) -> str | None:
    """Twilio's `ValidityPeriod` for a message worth sending until `expires_at`: the whole
    seconds left, from 1 to Twilio's most, 36,000 (10 hours); None without an expiry.
    A message still in Twilio's queue then fails with error 30036 (read as `expired`)."""
    if expires_at is None:
        return None
    return str(min(MAX_VALIDITY, max(1, math.ceil(expires_at - now))))


async def _post(
    http: httpx.AsyncClient,
    config: TwilioConfig,
    to: str,
    sender: str,
    content: dict[str, str],
    validity: str | None,
) -> Delivery:
    try:
        form = {"To": twilio_to(read_address(to)), "From": sender, **content}
    except InvalidAddress as exc:
        return Delivery(None, "failed", error_code=INVALID_ADDRESS, detail=exc.reason)
    if validity is not None:
        form["ValidityPeriod"] = validity
    callback = config.status_callback()
    if callback:
        form["StatusCallback"] = callback
    auth = (config.account_sid or "", config.token or "")
    try:
        response = await http.post(config.messages_url(), data=form, auth=auth)
    except httpx.HTTPError as exc:
        return request_failed(exc, "Twilio")
    return delivery_of(response)


def delivery_of(response: httpx.Response) -> Delivery:
    """Read Twilio's answer: accepted with a sid, or failed with Twilio's error code."""
    data = _json(response)
    retryable = response.status_code == 429 or response.status_code >= 500
    sid = data.get("sid")
    if response.is_success and isinstance(sid, str) and sid:
        return Delivery(sid, str(data.get("status") or "queued"))
    code = data.get("code")
    error_code = str(code) if code is not None else None
    more = data.get("more_info") or ""
    hint = HINTS.get(error_code or "")
    return Delivery(
        None,
        "failed",
        error_code=error_code,
        retryable=retryable and hint is None,
        detail=hint or f"HTTP {response.status_code} from Twilio {more}".strip(),
        throttled=response.status_code == 429 or error_code == TOO_MANY_REQUESTS,
    )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
