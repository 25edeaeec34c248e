"""Posting to the Graph API `/messages` endpoint, and reading its answer as a Delivery.

Requests go through the injected `httpx.AsyncClient`, so tests point it at a fake Graph
API. An answer is judged by its JSON `error.code` (see error_codes), not by its HTTP
status. Logs carry the error code and Meta's trace id, never the token, a phone number
or a message body.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from palabre.transports import Delivery
from palabre_meta_cloud.config import MetaConfig
from palabre_meta_cloud.error_codes import handling_for

log = logging.getLogger("palabre.meta_cloud")


async def post_message(
    http: httpx.AsyncClient, config: MetaConfig, body: dict[str, Any]
) -> Delivery:
    """Send one request body; a Delivery with the wamid, or why it failed."""
    if not config.can_send:
        return Delivery(None, "failed", detail="META_ACCESS_TOKEN or META_PHONE_NUMBER_ID unset")
    headers = {"Authorization": f"Bearer {config.access_token}"}
    try:
        response = await http.post(config.messages_url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        log.warning("Graph API unreachable: %s", type(exc).__name__)
        return Delivery(None, "failed", retryable=True, detail="Graph API unreachable")
    return read_answer(response)


def read_answer(response: httpx.Response) -> Delivery:
    """The Delivery a Graph API answer means."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        retry = response.status_code >= 500 or response.status_code == 429
        detail = f"Graph API answered HTTP {response.status_code} without JSON"
        return Delivery(None, "failed", retryable=retry, detail=detail)
    if isinstance(answer.get("error"), dict):
        return _failure(answer["error"])
    wamid = _wamid(answer)
    if wamid is None:
        return Delivery(None, "failed", detail="Graph API answer without a message id")
    return Delivery(wamid, "queued")


def _failure(error: dict[str, Any]) -> Delivery:
    code = error.get("code") if isinstance(error.get("code"), int) else None
    handling = handling_for(code, str(error.get("type", "")))
    fields = {"code": code, "subcode": error.get("error_subcode"), "trace": error.get("fbtrace_id")}
    if handling.alert_operator:
        log.error("OPERATOR ACTION NEEDED: %s", handling.detail, extra=fields)
    else:
        log.warning("Graph API refused a message: %s", handling.detail, extra=fields)
    return Delivery(
        None,
        "failed",
        error_code=str(code) if code is not None else None,
        retryable=handling.retryable,
        detail=handling.detail,
    )


def _wamid(answer: dict[str, Any]) -> str | None:
    messages = answer.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        wamid = messages[0].get("id")
        return wamid if isinstance(wamid, str) and wamid else None
    return None
