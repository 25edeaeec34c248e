"""Turn the parameters of a Twilio messaging webhook into the engine's `Inbound`.

The contact is Twilio's `From` as a canonical address (palabre.addresses): `whatsapp:+E164`
for `whatsapp:+E164`, `tel:+E164` for an SMS from `+E164`, so replies go back on the
channel the contact wrote on. Profile names and WaId are personal data the flows do not
need: they are dropped here.

A `From` that is no phone number (an operator's alphanumeric sender such as "Vodacom",
a short code) cannot be answered: the message is refused with `UnreachableSender` (a
MalformedRequest, so never a 5xx), logged with its MessageSid but not its sender, and no
flow runs. It is not kept under a raw form: a reply to it could not be delivered.
"""

from __future__ import annotations

import logging
import math
import re

from palabre.addresses import TEL, WHATSAPP, Address, InvalidAddress, provider_phone
from palabre.runtime.messages import Inbound, Media
from palabre_twilio.form import MalformedRequest, Params, field

log = logging.getLogger("palabre.twilio")

MAX_MEDIA = 10  # Twilio's own limit per message
SID = re.compile(r"[A-Za-z0-9_-]{1,64}")
WHATSAPP_PREFIX = "whatsapp:"


class UnreachableSender(MalformedRequest):
    """`From` is no phone number, so no reply can reach it (see the module docstring)."""


def channel_of(contact: str) -> str:
    """ "whatsapp" for a `whatsapp:` (or `whatsapp-user:`) address, else "sms"."""
    return "whatsapp" if contact.startswith(WHATSAPP) else "sms"


def sender_address(raw: str) -> Address:
    """The canonical address of a webhook's `From`: `whatsapp:+E164` or `tel:+E164`."""
    whatsapp = raw.startswith(WHATSAPP_PREFIX)
    number = raw.removeprefix(WHATSAPP_PREFIX) if whatsapp else raw
    if not number.startswith("+"):  # Twilio writes every phone number in E.164
        raise UnreachableSender("From is not a phone number")
    try:
        return Address(WHATSAPP if whatsapp else TEL, provider_phone(number))
    except InvalidAddress:
        raise UnreachableSender("From is not a phone number") from None


def recipient_of(raw: str) -> str:
    """The canonical address of a status callback's `To`; "" when it names no phone."""
    try:
        return str(sender_address(raw.strip()))
    except UnreachableSender:
        return ""


def to_inbound(params: Params) -> Inbound:
    """The inbound message the webhook describes; MalformedRequest when it makes no sense."""
    raw_sender = field(params, "From")
    message_sid = field(params, "MessageSid")
    if not SID.fullmatch(message_sid):
        raise MalformedRequest("MessageSid is not a Twilio id")
    try:
        contact = str(sender_address(raw_sender))
    except UnreachableSender:
        log.warning(
            "twilio message from a sender that is no phone number: refused",
            extra={"message_sid": message_sid},
        )
        raise
    payload = params.get("ButtonPayload", "").strip()
    text = params.get("ButtonText", "") if payload else params.get("Body", "")
    return Inbound(
        contact=contact,
        text=text,
        channel=channel_of(contact),
        message_id=message_sid,
        reply_id=payload or None,
        media=media_of(params),
        location=location_of(params),
        transport="twilio",
    )


def media_of(params: Params) -> tuple[Media, ...]:
    """The attachments: `NumMedia`, then `MediaUrlN` and `MediaContentTypeN` for each."""
    count = media_count(params.get("NumMedia", "0").strip() or "0")
    if count is None:
        raise MalformedRequest(f"NumMedia must be a number from 0 to {MAX_MEDIA}")
    found = []
    for i in range(count):
        url = field(params, f"MediaUrl{i}")
        kind = params.get(f"MediaContentType{i}", "").strip() or "application/octet-stream"
        found.append(Media(content_type=kind, url=url))
    return tuple(found)


def media_count(text: str) -> int | None:
    """`NumMedia` as a number from 0 to MAX_MEDIA, or None. ASCII digits only: isdigit()
    also accepts `²` and `١`, which int() refuses or reads, and no webhook sends them."""
    digits = text.lstrip("0") or "0"
    if not (text.isascii() and text.isdigit()) or len(digits) > len(str(MAX_MEDIA)):
        return None  # lengths first: int() of thousands of digits would raise
    count = int(digits)
    return count if count <= MAX_MEDIA else None


def location_of(params: Params) -> tuple[float, float] | None:
    """(latitude, longitude) of a shared location, or None when there is none."""
    latitude, longitude = params.get("Latitude", ""), params.get("Longitude", "")
    if not latitude and not longitude:
        return None
    lat = _coordinate(latitude, "Latitude", 90.0)
    lon = _coordinate(longitude, "Longitude", 180.0)
    return (lat, lon)


def _coordinate(value: str, name: str, bound: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise MalformedRequest(f"{name} is not a number") from None
    if not math.isfinite(number) or abs(number) > bound:
        raise MalformedRequest(f"{name} is out of range")
    return number
