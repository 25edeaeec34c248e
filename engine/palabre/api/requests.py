"""An event request, read and checked field by field: what `POST /api/v1/events` takes.

    {"event": "ticket.called", "id": "T-42-called", "to": "+243812345678",
     "channel": "sms", "lang": "fr", "data": {"ticket": "A42"}, "ttl": 600}

`event` names what happened (a flow's `triggers: {event: ...}`), `id` is the caller's
idempotency key for it, `to` the person (read as `palabre start` reads addresses),
`channel` (whatsapp, sms) sets the address's channel, `lang` their language when known,
`data` is readable as `event.data` in the flow's texts, and `ttl` (seconds) is how long
its messages are worth sending. Every fault is collected, not only the first, each named
by a JSON pointer; unknown fields are faults too (a typo such as `too` would otherwise
be silently ignored).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from palabre.addresses import PHONE_SCHEMES, TEL, WHATSAPP, Address, InvalidAddress, parse_address
from palabre.api.problems import FieldError, invalid
from palabre.flow.loader import EVENT_NAME, SUPPORTED_LOCALES

FIELDS = ("event", "id", "to", "channel", "lang", "data", "ttl")
MAX_ID_CHARS = 200
MAX_TTL = 7 * 86400  # a week: anything later is no notification
MAX_DATA_KEYS = 50
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
# One encoder for every request: json.dumps with options makes a new one each call.
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class EventRequest:
    """A checked event request."""

    event: str
    id: str
    to: str  # the canonical address, `tel:+243...`
    channel: str
    lang: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    ttl: int | None = None

    @cached_property
    def canonical(self) -> str:
        """The request as one JSON text, whatever order its fields came in: what is kept
        until its flows run (palabre.api.queue), and what its digest hashes."""
        fields = [self.event, self.to, self.lang, self.data, self.ttl]
        return _CANONICAL.encode(fields)

    @property
    def digest(self) -> str:
        """What tells this request from another sent under the same id."""
        return hashlib.sha256(self.canonical.encode("utf-8", "surrogatepass")).hexdigest()


def read_event(body: Any, region: str | None, known: Callable[[str], bool]) -> EventRequest:
    """The request in `body` (parsed JSON); a 422 Problem listing every field at fault.
    `known(event)` says whether a flow is triggered by the event."""
    if not isinstance(body, dict):
        raise invalid([FieldError("#", "the body must be a JSON object")])
    errors = _unknown_fields(body)
    event = _event(body.get("event"), known, errors)
    event_id = _id(body.get("id"), errors)
    address = _address(body.get("to"), body.get("channel"), region, errors)
    lang = _lang(body.get("lang"), errors)
    data = _data(body.get("data", {}), errors)
    ttl = _ttl(body.get("ttl"), errors)
    if errors or address is None:
        raise invalid(errors)
    return EventRequest(event, event_id, str(address), address.channel, lang, data, ttl)


def _unknown_fields(body: dict[str, Any]) -> list[FieldError]:
    """Unknown fields, named when their name is a plain word (a typo such as `too`); any
    other name may be data sent in the wrong place, and is not repeated."""
    unknown = [name for name in body if name not in FIELDS]
    named = [FieldError(f"#/{name}", "unknown field") for name in unknown if WORD.fullmatch(name)]
    others = len(unknown) - len(named)
    if others:
        named.append(FieldError("#", f"{others} unknown fields whose names are not shown"))
    return named


def _event(value: Any, known: Callable[[str], bool], errors: list[FieldError]) -> str:
    if not isinstance(value, str) or not EVENT_NAME.fullmatch(value):
        errors.append(FieldError("#/event", "required: an event name, like ticket.called"))
        return ""
    if not known(value):
        errors.append(FieldError("#/event", "no flow is triggered by this event"))
    return value


def _id(value: Any, errors: list[FieldError]) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_CHARS or not value.isprintable():
        detail = f"required: your id for this event, 1 to {MAX_ID_CHARS} printable characters"
        errors.append(FieldError("#/id", detail))
        return ""
    return value


def _address(
    value: Any, channel: Any, region: str | None, errors: list[FieldError]
) -> Address | None:
    if channel is not None and channel not in ("whatsapp", "sms"):
        errors.append(FieldError("#/channel", "whatsapp or sms"))
        channel = None
    if not isinstance(value, str):
        errors.append(FieldError("#/to", "required: the person's number, like +243812345678"))
        return None
    try:
        address = parse_address(value, region)
    except InvalidAddress as exc:  # its reason never repeats the number
        errors.append(FieldError("#/to", exc.reason))
        return None
    if channel and address.scheme in PHONE_SCHEMES:
        return Address(WHATSAPP if channel == "whatsapp" else TEL, address.value)
    if channel == "sms":
        errors.append(FieldError("#/channel", "this address has no phone number for an SMS"))
    return address


def _lang(value: Any, errors: list[FieldError]) -> str | None:
    if value is None or value in SUPPORTED_LOCALES:
        return value
    errors.append(FieldError("#/lang", f"one of {', '.join(SUPPORTED_LOCALES)}"))
    return None


def _data(value: Any, errors: list[FieldError]) -> dict[str, Any]:
    if not isinstance(value, dict) or len(value) > MAX_DATA_KEYS:
        errors.append(FieldError("#/data", f"an object of at most {MAX_DATA_KEYS} fields"))
        return {}
    return value


def _ttl(value: Any, errors: list[FieldError]) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_TTL:
        errors.append(FieldError("#/ttl", f"whole seconds, from 1 to {MAX_TTL}"))
        return None
    return value
