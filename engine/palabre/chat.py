"""`palabre chat`: talk to a flow in the terminal, or script it through stdin."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TextIO

from palabre.render import as_plain_text
from palabre.runtime.engine import Engine
from palabre.runtime.messages import Inbound


def _lines(stream: TextIO, interactive: bool, out: TextIO) -> Iterator[str]:
    while True:
        if interactive:
            out.write("> ")
            out.flush()
        line = stream.readline()
        if not line:
            return
        text = line.rstrip("\r\n")
        if not interactive:
            out.write(f"> {text}\n")
        yield text


async def chat(
    engine: Engine,
    *,
    contact: str,
    lang: str | None,
    resume: bool,
    stream: TextIO = sys.stdin,
    out: TextIO = sys.stdout,
) -> None:
    """Read one message per line and print the bot's replies until end of input."""
    if not resume:
        await engine.store.commit(contact, None)
    interactive = stream.isatty()
    if interactive:
        out.write("Type a message to start (Ctrl-D to quit).\n")
    for text in _lines(stream, interactive, out):
        inbound = Inbound(contact, text, "cli", message_id=None, language=lang)
        reply = await engine.handle(inbound)
        for message in reply.messages:
            out.write(_indent(as_plain_text(message)) + "\n")
        out.flush()


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
