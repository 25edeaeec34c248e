"""Send one message through Twilio's REST API (Messages.json) and read the answer.

A message has a `Body`, a `MediaUrl` (a public URL Twilio fetches the image from), or both.

Twilio answers 201 with the message's `sid` and `status`, or an error JSON with `code`,
`message`, `more_info` and `status`. The error message can quote the phone number, so
a Delivery keeps only the code and the documentation link.
"""

from __future__ import annotations

from typing import Any

import httpx

from palabre.transports import Delivery
from palabre_twilio.config import TwilioConfig


async def post_message(
    http: httpx.AsyncClient,
    config: TwilioConfig,
    to: str,
    sender: str,
    body: str,
    media_url: str | None = None,
) -> Delivery:
    """POST one message (a body, an image URL or both); a Delivery says if Twilio took it."""
    form = {"To": to, "From": sender}
    if body or not media_url:
        form["Body"] = body
    if media_url:
        form["MediaUrl"] = media_url
    callback = config.status_callback()
    if callback:
        form["StatusCallback"] = callback
    auth = (config.account_sid or "", config.token or "")
    try:
        response = await http.post(config.messages_url(), data=form, auth=auth)
    except httpx.HTTPError as exc:
        detail = f"Twilio unreachable: {type(exc).__name__}"
        return Delivery(None, "failed", retryable=True, detail=detail)
    return delivery_of(response)


def delivery_of(response: httpx.Response) -> Delivery:
    """Read Twilio's answer: accepted with a sid, or failed with Twilio's error code."""
    data = _json(response)
    retryable = response.status_code == 429 or response.status_code >= 500
    sid = data.get("sid")
    if response.is_success and isinstance(sid, str) and sid:
        return Delivery(sid, str(data.get("status") or "queued"))
    code = data.get("code")
    more = data.get("more_info") or ""
    return Delivery(
        None,
        "failed",
        error_code=str(code) if code is not None else None,
        retryable=retryable,
        detail=f"HTTP {response.status_code} from Twilio {more}".strip(),
    )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
