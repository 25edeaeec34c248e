"""One WhatsApp message object from a webhook, read as an Inbound for the engine.

What each message `type` becomes:
- `text`: the text; `interactive` (`button_reply`, `list_reply`): reply_id = the id the
  option was sent with, text = its title; `button` (a template quick reply): reply_id = the
  payload, text = the button text.
- `image`, `document`, `audio`, `video`, `sticker`, `voice`: media by Meta media id and
  MIME type (download it with the media id); a caption becomes the text.
- `location`: the (latitude, longitude) pair, no text.
- `reaction` and `system`: ignored (None) — a thumbs-up is not an answer and gets no reply.
- anything else (`unsupported`, `unknown`, `contacts`, `order`, `nfm_reply`...): an
  Inbound with no text, so the flow politely asks its question again.

A message's `timestamp` (Unix seconds) is when the contact sent it: WhatsApp's 24-hour
window counts from then, not from when the webhook arrived (palabre.outbox.windows).

The contact is a canonical address (palabre.addresses): `whatsapp:+E164` from `from`
(the wa_id, digits without `+`), else, when Meta withholds the number of a user who
adopted a username, `whatsapp-user:<BSUID>` from `from_user_id`. A message with neither
usable is refused with a logged 200 (None: no flow runs, and Meta does not retry): with
no address no reply can be sent, and a signed body is Meta's, so a retry would carry the
same sender.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from palabre.addresses import (
    BSUID,
    WHATSAPP,
    WHATSAPP_USER,
    Address,
    InvalidAddress,
    provider_phone,
)
from palabre.runtime.messages import Inbound, Media

log = logging.getLogger("palabre.meta_cloud")

CHANNEL = "whatsapp"
TRANSPORT = "meta_cloud"  # the transport's name: the outbox sends replies back through it
IGNORED_TYPES = frozenset({"reaction", "system"})
MEDIA_TYPES = frozenset({"image", "document", "audio", "video", "sticker", "voice"})
DEFAULT_MIME = "application/octet-stream"


class PayloadError(ValueError):
    """The body is not shaped like a webhook Meta sends: answer 400, never 500."""


def read_message(message: Any) -> Inbound | None:
    """The Inbound for one `messages[]` item, or None when it needs no answer."""
    if not isinstance(message, dict):
        raise PayloadError("each item of messages must be an object")
    wamid, kind = message.get("id"), message.get("type")
    kind = kind if isinstance(kind, str) else ""
    if not isinstance(wamid, str) or not wamid:
        raise PayloadError("a message has no string id")
    if kind in IGNORED_TYPES:
        return None
    reader = READERS.get(kind, _media if kind in MEDIA_TYPES else _unsupported)
    content = reader(message, kind)  # read first: a malformed message is refused whole (400)
    sender = sender_address(message.get("from"), message.get("from_user_id"))
    if sender is None:
        log.warning("message without a usable sender refused", extra={"wamid": wamid})
        return None
    sent_at = _timestamp(message.get("timestamp"))
    return Inbound(
        contact=str(sender),
        channel=CHANNEL,
        message_id=wamid,
        transport=TRANSPORT,
        sent_at=sent_at,
        **content,
    )


def _timestamp(value: Any) -> float | None:
    """When the contact sent the message: Meta's `timestamp`, Unix seconds as a string;
    None when absent or odd (the window then counts from when it arrived)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        return float(value)
    return None


def sender_address(phone: Any, user_id: Any) -> Address | None:
    """`whatsapp:+E164` from a wa_id, else `whatsapp-user:<BSUID>`, else None.

    Serves messages (`from`, `from_user_id`) and statuses (`recipient_id`,
    `recipient_user_id`) alike.
    """
    if isinstance(phone, str) and phone.isascii() and phone.isdigit():
        try:
            return Address(WHATSAPP, provider_phone(phone))
        except InvalidAddress:
            pass
    if isinstance(user_id, str) and BSUID.fullmatch(user_id):
        return Address(WHATSAPP_USER, user_id)
    return None


def part(holder: dict[str, Any], key: str) -> dict[str, Any]:
    """The object `holder[key]`: {} when absent, PayloadError when not an object."""
    value = holder.get(key, {})
    if not isinstance(value, dict):
        raise PayloadError(f"{key} must be an object")
    return value


def _string(holder: dict[str, Any], key: str) -> str:
    value = holder.get(key, "")
    if not isinstance(value, str):
        raise PayloadError(f"{key} must be a string")
    return value


def _text(message: dict[str, Any], kind: str) -> dict[str, Any]:
    return {"text": _string(part(message, "text"), "body")}


def _interactive(message: dict[str, Any], kind: str) -> dict[str, Any]:
    interactive = part(message, "interactive")
    reply_kind = interactive.get("type")
    if reply_kind not in ("button_reply", "list_reply"):
        return {}
    reply = part(interactive, str(reply_kind))
    return {"reply_id": _string(reply, "id") or None, "text": _string(reply, "title")}


def _button(message: dict[str, Any], kind: str) -> dict[str, Any]:
    button = part(message, "button")
    return {"reply_id": _string(button, "payload") or None, "text": _string(button, "text")}


def _media(message: dict[str, Any], kind: str) -> dict[str, Any]:
    media = part(message, kind)
    media_id = _string(media, "id")
    mime = _string(media, "mime_type") or DEFAULT_MIME
    found = (Media(content_type=mime, media_id=media_id),) if media_id else ()
    return {"media": found, "text": _string(media, "caption")}


def _location(message: dict[str, Any], kind: str) -> dict[str, Any]:
    where = part(message, "location")
    return {"location": (_number(where, "latitude"), _number(where, "longitude"))}


def _unsupported(message: dict[str, Any], kind: str) -> dict[str, Any]:
    return {}


def _number(holder: dict[str, Any], key: str) -> float:
    value = holder.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise PayloadError(f"a location needs a numeric {key}")
    return float(value)


READERS: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
    "text": _text,
    "interactive": _interactive,
    "button": _button,
    "location": _location,
}
