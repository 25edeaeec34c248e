"""A pytest plugin for flow and plugin authors: scripted conversations, readable transcripts.

    def test_greeting(palabre_bot, snapshot):
        bot = palabre_bot("flows/uic.yaml")
        transcript = bot.converse(["Bonjour", "Mbengue"], lang="fr")
        assert str(transcript) == snapshot

`bot.start(flow_id, params, lang=...)` begins a flow for a contact who wrote nothing;
`bot.start(flow_id, event={"name": ..., "id": ..., "data": {...}})` as an event would.

Everything that would make a transcript change from run to run is pinned: the clock
starts at 2026-01-01 00:00 UTC and only moves with `wait(...)`, the secret is fixed,
and the stores live in the test's own temporary folder.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from palabre.config import Settings
from palabre.flow.fields import parse_duration
from palabre.flow.source import Source
from palabre.render import as_plain_text
from palabre.runtime.messages import Inbound, Media, Outbound, Reply

EPOCH = 1767225600.0  # 2026-01-01T00:00:00Z
TEST_SECRET = "palabre-test-secret-do-not-use-in-production"


@dataclass(frozen=True)
class Wait:
    """In a script: let time pass, e.g. Wait("2h")."""

    duration: str


@dataclass(frozen=True)
class Voice:
    """In a script: a voice note (media with no text)."""

    content_type: str = "audio/ogg"


@dataclass(frozen=True)
class Tap:
    """In a script: a tap on a button or list row with this id."""

    reply_id: str


ScriptItem = str | Wait | Voice | Tap


class Clock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = EPOCH) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Transcript:
    """What was said, line by line: `contact>` for the contact, `bot>` for replies."""

    lines: list[str] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(self.lines) + "\n"

    @property
    def events(self) -> list[str]:
        return [name for reply in self.replies for name in reply.event_names()]

    @property
    def last(self) -> str:
        """The text of the last message the bot sent."""
        return next(m.text for r in reversed(self.replies) for m in reversed(r.messages))


class Bot:
    """A flow running on an engine of its own, with a pinned clock and temporary stores."""

    def __init__(self, paths: list[str | Path], data_dir: Path, **engine_options: Any) -> None:
        from palabre.bootstrap import build_engine

        self.clock = Clock()
        settings = Settings(data_dir=data_dir, secrets={"PALABRE_SECRET": TEST_SECRET})
        self._loop = asyncio.new_event_loop()
        self.engine = build_engine(paths, settings, clock=self.clock, **engine_options)
        self._ids = 0

    def converse(
        self,
        script: list[ScriptItem],
        *,
        lang: str | None = None,
        contact: str = "+243810000001",
        channel: str = "test",
    ) -> Transcript:
        """Play `script` as one contact and return the transcript."""
        transcript = Transcript()
        for item in script:
            if isinstance(item, Wait):
                self.clock.advance(parse_duration(Source("<script>", None), (), item.duration))
                transcript.lines.append(f"-- {item.duration} later --")
                continue
            reply = self._loop.run_until_complete(
                self.engine.handle(self._inbound(item, contact, channel, lang))
            )
            transcript.lines.append(f"contact> {_describe(item)}")
            transcript.lines += [_bot_line(_shown(m)) for m in reply.messages]
            transcript.replies.append(reply)
        return transcript

    def start(
        self,
        flow_id: str,
        params: dict[str, Any] | None = None,
        *,
        lang: str | None = None,
        contact: str = "+243810000001",
        channel: str = "test",
        event: dict[str, Any] | None = None,
    ) -> Transcript:
        """Begin `flow_id` for a contact who wrote nothing (a notice, a broadcast), with
        `params`; the transcript holds what the contact is sent. `event` ({name, id, data})
        is what an outside event gives the flow, readable as `event` in its texts."""
        from palabre.runtime.entrances import Contact

        started = Contact(contact, channel=channel, language=lang)
        variables = {"event": event} if event is not None else None
        reply = self._loop.run_until_complete(
            self.engine.start(started, flow_id, params, variables=variables)
        )
        transcript = Transcript([f"-- {flow_id} started --"], [reply])
        transcript.lines += [_bot_line(_shown(m)) for m in reply.messages]
        return transcript

    def _inbound(self, item: ScriptItem, contact: str, channel: str, lang: str | None) -> Inbound:
        self._ids += 1
        inbound = Inbound(contact, channel=channel, message_id=f"test-{self._ids}", language=lang)
        if isinstance(item, Voice):
            media = (Media(item.content_type, url="https://example.test/voice.ogg"),)
            return replace(inbound, media=media)
        if isinstance(item, Tap):
            return replace(inbound, reply_id=item.reply_id)
        assert isinstance(item, str)
        return replace(inbound, text=item)

    def close(self) -> None:
        self._loop.run_until_complete(self.engine.aclose())
        self._loop.close()


def _describe(item: ScriptItem) -> str:
    if isinstance(item, Voice):
        return f"[voice note {item.content_type}]"
    if isinstance(item, Tap):
        return f"[taps {item.reply_id}]"
    assert isinstance(item, str)
    return item if len(item) <= 80 else f"{item[:60]}... ({len(item)} characters)"


def _shown(message: Outbound) -> str:
    """The message as a contact sees it; an attached image is shown as [image]."""
    text = as_plain_text(message)
    return f"[image] {text}" if message.image else text


def _bot_line(text: str) -> str:
    first, *rest = text.splitlines() or [""]
    return "\n".join([f"bot> {first}", *(f"     {line}" for line in rest)])


@pytest.fixture
def palabre_bot(tmp_path: Path) -> Iterator[Callable[..., Bot]]:
    """Make a `Bot` for flow files: `palabre_bot("flows/uic.yaml")`."""
    bots: list[Bot] = []

    def make(*paths: str | Path, **engine_options: Any) -> Bot:
        bot = Bot(list(paths), tmp_path / f"bot{len(bots)}", **engine_options)
        bots.append(bot)
        return bot

    yield make
    for bot in bots:
        bot.close()
