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
        await engine.forget(contact)
    interactive = stream.isatty()
    if interactive:
        out.write("Type a message to start (Ctrl-D to quit).\n")
    for text in _lines(stream, interactive, out):
        inbound = Inbound(contact, text, "cli", message_id=None, language=lang, transport="cli")
        reply = await engine.handle(inbound)
        for message in reply.messages:
            out.write(_indent(as_plain_text(message)) + "\n")
            if message.image:
                out.write(_indent(await _save_image(engine, message.image)) + "\n")
        out.flush()


async def _save_image(engine: Engine, media_id: str) -> str:
    """A terminal cannot show an image: save it beside the data and say where."""
    item = await engine.stores.media.get(media_id) if engine.stores else None
    if item is None:
        return "[image expired]"
    path = engine.settings.data_dir / f"image-{media_id}.png"
    path.write_bytes(item.data)
    return f"[image saved to {path}]"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
