"""Posting to the Graph API `/messages` and `/media` endpoints, and reading the answers.

`/messages` answers with the message's wamid; `/media` takes a multipart upload (`file`,
`type` = its MIME type, `messaging_product=whatsapp`) and answers `{"id": <media id>}`.

Requests go through the injected `httpx.AsyncClient`, so tests point it at a fake Graph
API. An answer is judged by its JSON `error.code` (see error_codes), not by its HTTP
status. Logs carry the error code and Meta's trace id, never the token, a phone number
or a message body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx

from palabre.transports import Delivery, request_failed
from palabre_meta_cloud.config import MetaConfig
from palabre_meta_cloud.error_codes import handling_for

log = logging.getLogger("palabre.meta_cloud")
NOT_CONFIGURED = "META_ACCESS_TOKEN or META_PHONE_NUMBER_ID unset"


async def post_message(
    http: httpx.AsyncClient, config: MetaConfig, body: dict[str, Any]
) -> Delivery:
    """Send one request body; a Delivery with the wamid, or why it failed."""
    if not config.can_send:
        return Delivery(None, "failed", detail=NOT_CONFIGURED)
    headers = {"Authorization": f"Bearer {config.access_token}"}
    try:
        response = await http.post(config.messages_url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        log.warning("Graph API gave no answer: %s", type(exc).__name__)
        return request_failed(exc, "the Graph API")
    return read_answer(response)


async def upload_media(
    http: httpx.AsyncClient, config: MetaConfig, data: bytes, content_type: str, filename: str
) -> Delivery:
    """Upload one file; a Delivery whose provider_id is Meta's media id, or why it failed."""
    if not config.can_send:
        return Delivery(None, "failed", detail=NOT_CONFIGURED)
    headers = {"Authorization": f"Bearer {config.access_token}"}
    fields = {"messaging_product": "whatsapp", "type": content_type}
    files = {"file": (filename, data, content_type)}
    try:
        response = await http.post(config.media_url, data=fields, files=files, headers=headers)
    except httpx.HTTPError as exc:
        # An upload that got no answer sent nothing to the contact: uploading again is safe.
        log.warning("Graph API gave no answer: %s", type(exc).__name__)
        failed = request_failed(exc, "the Graph API")
        return Delivery(None, "failed", retryable=True, detail=failed.detail)
    return read_answer(response, _media_id, "uploaded")


def read_answer(
    response: httpx.Response,
    identify: Callable[[dict[str, Any]], str | None] | None = None,
    status: str = "queued",
) -> Delivery:
    """The Delivery a Graph API answer means; `identify` finds the id (default: the wamid)."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        throttled = response.status_code == 429
        retry = response.status_code >= 500 or throttled
        detail = f"Graph API answered HTTP {response.status_code} without JSON"
        return Delivery(None, "failed", retryable=retry, detail=detail, throttled=throttled)
    if isinstance(answer.get("error"), dict):
        return _failure(answer["error"])
    found = (identify or _wamid)(answer)
    if found is None:
        return Delivery(None, "failed", detail="Graph API answer without an id")
    return Delivery(found, status)


def _failure(error: dict[str, Any]) -> Delivery:
    code = error.get("code") if isinstance(error.get("code"), int) else None
    handling = handling_for(code, str(error.get("type", "")))
    fields = {"code": code, "subcode": error.get("error_subcode"), "trace": error.get("fbtrace_id")}
    if handling.alert_operator:
        log.error("OPERATOR ACTION NEEDED: %s", handling.detail, extra=fields)
    else:
        log.warning("Graph API refused a request: %s", handling.detail, extra=fields)
    return Delivery(
        None,
        "failed",
        error_code=str(code) if code is not None else None,
        retryable=handling.retryable,
        detail=handling.detail,
        throttled=handling.throttled,
    )


def _media_id(answer: dict[str, Any]) -> str | None:
    media_id = answer.get("id")
    return media_id if isinstance(media_id, str) and media_id else None


def _wamid(answer: dict[str, Any]) -> str | None:
    messages = answer.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        wamid = messages[0].get("id")
        return wamid if isinstance(wamid, str) and wamid else None
    return None
