"""What a contact receives from one outbound message: plain-text bodies, and TwiML.

Twilio shows no buttons on SMS or (without approved templates) WhatsApp, so options are
numbered lines (`palabre.render.as_plain_text`). SMS bodies are split on segment
boundaries; every body stays within Twilio's 1600 characters.
"""

from __future__ import annotations

import re

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


def twiml(texts: list[str], action: str | None = None) -> str:
    """A TwiML <Response> with one <Message> per body (none: Twilio sends nothing)."""
    messaging = load_sdk("twilio.twiml.messaging_response")
    response = messaging.MessagingResponse()
    for text in texts:
        response.message(text, action=action)
    return str(response)
