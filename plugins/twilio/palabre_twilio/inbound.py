"""Turn the parameters of a Twilio messaging webhook into the engine's `Inbound`.

The contact id is Twilio's `From` as is, `whatsapp:` prefix included, so that replies go
back on the channel the contact wrote on. Profile names and WaId are personal data the
flows do not need: they are dropped here.
"""

from __future__ import annotations

import math
import re

from palabre.runtime.messages import Inbound, Media
from palabre_twilio.form import MalformedRequest, Params, field

MAX_MEDIA = 10  # Twilio's own limit per message
SID = re.compile(r"[A-Za-z0-9_-]{1,64}")
WHATSAPP = "whatsapp:"


def channel_of(contact: str) -> str:
    """ "whatsapp" for a `whatsapp:` address, else "sms"."""
    return "whatsapp" if contact.startswith(WHATSAPP) else "sms"


def to_inbound(params: Params) -> Inbound:
    """The inbound message the webhook describes; MalformedRequest when it makes no sense."""
    contact = field(params, "From")
    message_sid = field(params, "MessageSid")
    if not SID.fullmatch(message_sid):
        raise MalformedRequest("MessageSid is not a Twilio id")
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
    )


def media_of(params: Params) -> tuple[Media, ...]:
    """The attachments: `NumMedia`, then `MediaUrlN` and `MediaContentTypeN` for each."""
    count = params.get("NumMedia", "0").strip() or "0"
    if not count.isdigit() or int(count) > MAX_MEDIA:
        raise MalformedRequest(f"NumMedia must be a number from 0 to {MAX_MEDIA}")
    found = []
    for i in range(int(count)):
        url = field(params, f"MediaUrl{i}")
        kind = params.get(f"MediaContentType{i}", "").strip() or "application/octet-stream"
        found.append(Media(content_type=kind, url=url))
    return tuple(found)


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
