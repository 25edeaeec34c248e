"""Plain-text rendering of an outbound message, for channels without buttons (SMS, terminal),
and of a WhatsApp template's parameter."""

from __future__ import annotations

import re

from palabre.runtime.messages import Outbound

_WHITESPACE = re.compile(r"\s+")


def as_plain_text(message: Outbound) -> str:
    """The message text, then its options as numbered lines: "1. Man"."""
    lines = [message.text]
    lines += [f"{i}. {option.title}" for i, option in enumerate(message.options, start=1)]
    return "\n".join(lines)


def one_line(text: str) -> str:
    """`text` with each run of whitespace as one space: WhatsApp refuses a template whose
    parameter holds a newline, a tab or more than four spaces in a row, through Meta's API
    or Twilio's, so a notice of several paragraphs would never arrive."""
    return _WHITESPACE.sub(" ", text).strip()
