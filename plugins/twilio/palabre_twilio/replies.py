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
from palabre.sms import MAX_MESSAGE_CHARS, split_at_words, split_for_sms
from palabre_twilio.inbound import channel_of

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
    """A TwiML <Response> with one <Message> per part (none: Twilio sends nothing).

    Written directly, as the twilio SDK's MessagingResponse writes it (a test compares
    them on fuzzed bodies): the SDK builds an ElementTree per reply, some 20 times slower.
    """
    opening = f'<Message action="{_escape(action, True)}"' if action is not None else "<Message"
    messages = [_message(opening, part) for part in replies]
    if not messages:
        return XML_DECLARATION + "<Response />"
    return XML_DECLARATION + "<Response>" + "".join(messages) + "</Response>"


XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def _message(opening: str, part: Part) -> str:
    if part.media_url is None:
        return f"{opening}>{_escape(part.body)}</Message>" if part.body else f"{opening} />"
    body = f"<Body>{_escape(part.body)}</Body>" if part.body else ""
    media = f"<Media>{_escape(part.media_url)}</Media>" if part.media_url else "<Media />"
    return f"{opening}>{body}{media}</Message>"


def _escape(text: str, attribute: bool = False) -> str:
    """Escape as ElementTree does: &, <, > everywhere; quotes and newlines in attributes."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if attribute:
        text = text.replace('"', "&quot;").replace("\n", "&#10;")
        text = text.replace("\r", "&#13;").replace("\t", "&#09;")
    return text
