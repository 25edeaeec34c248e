"""The OpenAPI 3.1 document of the events API, served at /api/v1/openapi.json.

It is written out rather than generated, and tests/test_events_api.py holds it to the
routes: every path and method it names is served, its example is accepted, and each
answer it lists is one a request can get, with the media type and headers it lists.
"""

from __future__ import annotations

from typing import Any

from palabre.api.prefer import MAX_WAIT
from palabre.api.requests import MAX_DATA_KEYS, MAX_ID_CHARS, MAX_TTL
from palabre.flow.loader import SUPPORTED_LOCALES

EXAMPLE = {
    "event": "ticket.called",
    "id": "T-A42-called",
    "to": "+243812345678",
    "channel": "sms",
    "lang": "fr",
    "data": {"ticket": "A42", "counter": "3"},
    "ttl": 600,
}
PROBLEM = {"$ref": "#/components/schemas/Problem"}
UNAUTHORIZED = "no key, or a key unknown or revoked"
TOO_FAST = (
    "this key sends too fast, or too many requests from this client had no valid key (then "
    "any key is refused until Retry-After)"
)


def document() -> dict[str, Any]:
    """The document."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Palabre events API", "version": "1"},
        "paths": {
            "/api/v1/events": {"post": _post_events()},
            "/api/v1/events/{id}": {"get": _get_event()},
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Event": _event(),
                "Accepted": _accepted(),
                "EventStatus": _event_status(),
                "Problem": _problem(),
            },
        },
        "security": [{"apiKey": []}],
    }


def _post_events() -> dict[str, Any]:
    problems = {
        "400": "the body is not JSON",
        "401": UNAUTHORIZED,
        "408": "the body did not arrive whole in time",
        "413": "the body is larger than 64 KiB",
        "415": "the body is not application/json",
        "422": "fields are wrong (each named in `errors`), or the id was used for another event",
        "429": TOO_FAST,
        "503": "busy, or the database is unavailable: send it again after Retry-After",
    }
    accepted = "taken: the flows the event triggers start within moments (in order for each "
    accepted += "person); `status_url` tells what became of it. The same again for a copy. "
    accepted += "After `Prefer: wait=N`, also its status and its messages once its flows ran "
    accepted += "or N seconds passed."
    responses = _responses("202", accepted, "Accepted", problems)
    applied = f"wait=N: how long Palabre waited at most (N is capped at {MAX_WAIT})"
    responses["202"]["headers"] = {
        "Preference-Applied": {"schema": {"type": "string"}, "description": applied}
    }
    return {
        "summary": "Tell Palabre that something happened to a person",
        "operationId": "postEvent",
        "parameters": [_prefer()],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/Event"},
                    "example": EXAMPLE,
                }
            },
        },
        "responses": responses,
    }


def _prefer() -> dict[str, Any]:
    wait = "`wait=N` (RFC 7240): wait up to N seconds for the event's flows to run, so that "
    wait += f"the answer carries its messages' ids (N is capped at {MAX_WAIT})"
    return {"name": "Prefer", "in": "header", "schema": {"type": "string"}, "description": wait}


def _get_event() -> dict[str, Any]:
    problems = {
        "401": UNAUTHORIZED,
        "404": "this key sent no event with this id, or the retention forgot it",
        "429": "too many requests from this client had no valid key: any key is refused "
        "until Retry-After",
        "503": "the database is unavailable: ask again after Retry-After",
    }
    found = "the event's status (queued, starting, started, failed, expired) and its messages'"
    return {
        "summary": "What became of an event: its status, and its messages' statuses",
        "operationId": "getEvent",
        "parameters": [
            {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
        ],
        "responses": _responses("200", found, "EventStatus", problems),
    }


def _responses(status: str, why: str, schema: str, problems: dict[str, str]) -> dict[str, Any]:
    """The answer `status` (JSON of `schema`) and the problem documents, with their headers."""
    body = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    responses: dict[str, Any] = {status: {"description": why, "content": body}}
    for refused, reason in problems.items():
        content = {"application/problem+json": {"schema": PROBLEM}}
        responses[refused] = {"description": reason, "content": content}
    retry_after = {"Retry-After": {"schema": {"type": "integer"}}}
    responses["401"]["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    responses["429"]["headers"] = retry_after
    responses["503"]["headers"] = retry_after
    return responses


def _event() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["event", "id", "to"],
        "additionalProperties": False,
        "properties": {
            "event": {"type": "string", "description": "a flow's `triggers: {event: ...}`"},
            "id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS},
            "to": {"type": "string", "description": "+243..., a national number, whatsapp:+..."},
            "channel": {"enum": ["whatsapp", "sms"]},
            "lang": {"enum": list(SUPPORTED_LOCALES)},
            "data": {"type": "object", "maxProperties": MAX_DATA_KEYS},
            "ttl": {"type": "integer", "minimum": 1, "maximum": MAX_TTL},
        },
    }


def _accepted() -> dict[str, Any]:
    settled = _event_status()["properties"]
    after_wait = "after `Prefer: wait`: as `status_url` tells it"
    return {
        "type": "object",
        "required": ["id", "event", "status_url"],
        "properties": {
            "id": {"type": "string"},
            "event": {"type": "string"},
            "status_url": {"type": "string", "description": "GET it with the same key"},
            "status": settled["status"] | {"description": after_wait},
            "messages": settled["messages"] | {"description": after_wait},
            "error": settled["error"],
        },
    }


def _event_status() -> dict[str, Any]:
    message = {
        "type": "object",
        "required": ["id", "status"],
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string", "description": "as `palabre messages` shows it"},
        },
    }
    return {
        "type": "object",
        "required": ["id", "event", "status", "messages"],
        "properties": {
            "id": {"type": "string"},
            "event": {"type": "string"},
            "status": {"enum": ["queued", "starting", "started", "failed", "expired"]},
            "messages": {"type": "array", "items": message},
            "error": {"type": "string", "description": "why it failed"},
        },
    }


def _problem() -> dict[str, Any]:
    error = {
        "type": "object",
        "properties": {"pointer": {"type": "string"}, "detail": {"type": "string"}},
    }
    return {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {"type": "array", "items": error},
        },
    }
