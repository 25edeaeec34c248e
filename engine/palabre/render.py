"""Plain-text rendering of an outbound message, for channels without buttons (SMS, terminal)."""

from __future__ import annotations

from palabre.runtime.messages import Outbound


def as_plain_text(message: Outbound) -> str:
    """The message text, then its options as numbered lines: "1. Man"."""
    lines = [message.text]
    lines += [f"{i}. {option.title}" for i, option in enumerate(message.options, start=1)]
    return "\n".join(lines)
