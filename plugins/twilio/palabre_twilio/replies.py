"""What a contact receives from one outbound message: plain-text bodies, and TwiML.

Twilio shows no buttons on SMS or (without approved templates) WhatsApp, so options are
numbered lines (`palabre.render.as_plain_text`). SMS bodies are split on segment
boundaries; every body stays within Twilio's 1600 characters. An image travels as a
media URL Twilio fetches, on the first part only: `<Message><Body>..</Body><Media>..`
inline, `MediaUrl` through the REST API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from palabre.render import as_plain_text
from palabre.runtime.messages import Outbound
from palabre_twilio.config import load_sdk
from palabre_twilio.inbound import channel_of
from palabre_twilio.sms import MAX_MESSAGE_CHARS, split_at_words, split_for_sms

# XML 1.0 cannot carry these, and no phone shows them.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def bodies(message: Outbound) -> list[str]:
    """The message bodies, in order, that carry `message` to its contact."""
    text = _CONTROL.sub("", as_plain_text(message))
    if channel_of(message.contact) == "sms":
        return split_for_sms(text)
    return split_at_words(text, MAX_MESSAGE_CHARS)


@dataclass(frozen=True)
class Part:
    """One message Twilio sends: a body, and the absolute URL of an image or None."""

    body: str
    media_url: str | None = None


def parts(message: Outbound, media_url: str | None = None) -> list[Part]:
    """The parts that carry `message`; the image, if any, rides on the first one."""
    texts = bodies(message)
    if media_url is None:
        return [Part(text) for text in texts]
    first, *rest = texts or [""]
    return [Part(first, media_url), *(Part(text) for text in rest)]


def twiml(replies: list[Part], action: str | None = None) -> str:
    """A TwiML <Response> with one <Message> per part (none: Twilio sends nothing)."""
    messaging = load_sdk("twilio.twiml.messaging_response")
    response = messaging.MessagingResponse()
    for part in replies:
        if part.media_url is None:
            response.message(part.body, action=action)
            continue
        message = messaging.Message(action=action)
        if part.body:
            message.body(part.body)
        message.media(part.media_url)
        response.append(message)
    return str(response)
