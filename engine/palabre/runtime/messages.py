"""What goes into the engine and what comes out: inbound, outbound, events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Media:
    """An attachment: a URL (Twilio) or a provider media id (Meta), and its type."""

    content_type: str
    url: str | None = None
    media_id: str | None = None


@dataclass(frozen=True)
class Inbound:
    """One message from a contact, as a transport hands it to the engine."""

    contact: str
    text: str = ""
    channel: str = "cli"
    message_id: str | None = None
    reply_id: str | None = None
    media: tuple[Media, ...] = ()
    location: tuple[float, float] | None = None
    language: str | None = None  # a language the channel already knows (e.g. chosen in a UI)
    flow: str | None = None  # a flow the channel asks for, such as the simulator's choice
    transport: str = ""  # the transport that received it ("twilio", "meta_cloud", "web")
    sent_at: float | None = None  # when the contact sent it, by the provider (Meta's timestamp)


@dataclass(frozen=True)
class Option:
    """A choice offered with a message: its id and its title in the contact's language."""

    id: str
    title: str


@dataclass(frozen=True)
class Outbound:
    """One message for a contact. Transports render `options` as buttons or numbers.

    `contact` is the address to send to; `transport` the transport that sends it (the one
    the conversation came through); `id` names the message in the outbox and the log.
    """

    contact: str
    text: str
    language: str
    options: tuple[Option, ...] = ()
    image: str | None = None  # a media id in the media store (palabre.stores.media)
    channel: str = ""
    transport: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex, compare=False)
    # The approved template that stands for it outside WhatsApp's 24-hour window, its
    # parameters rendered: {"meta": {name, language, components}, "twilio": {...}}.
    template: dict[str, Any] | None = None
    as_template: bool = False  # the window is closed: send `template`, not the text
    ttl: int | None = None  # seconds it is worth sending (the step's `ttl`)
    expires_at: float | None = None  # when queued: not sent by then, it is `expired`


@dataclass(frozen=True)
class Event:
    """Something that happened, named in the past tense. `data` holds ids, never personal data."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Reply:
    """The engine's answer to one inbound message."""

    messages: list[Outbound] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    uids: list[str] = field(default_factory=list)  # the outbox rows the messages are

    def event_names(self) -> list[str]:
        return [event.name for event in self.events]
