"""What goes into the outbox (`Queued`), what a row looks like (`Row`), and the message a
row holds: an `Outbound` saved as JSON (text, language, options, image, the template
that stands for it outside WhatsApp's 24-hour window) and rebuilt.

A row's uid is the message's `Outbound.id`; its `channel` column is the name of the
transport that sends it (`Outbound.transport`: "twilio", "meta_cloud"...), or
`Queued.channel` when the message does not name one.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, fields
from typing import Any

from palabre.purposes import BROADCAST, SERVICE
from palabre.runtime.messages import Option, Outbound

PRIORITY = {"reply": 0, "event": 3, "start": 5, "agent": 5, "broadcast": 9}
KINDS = tuple(PRIORITY)


@dataclass(frozen=True)
class Queued:
    """One message to put in the outbox, as the conversation service hands it over."""

    message: Outbound  # id, channel, contact (address), text, language, options, image
    contact_key: str
    kind: str  # "reply" | "event" | "start" | "agent" | "broadcast"
    idempotency_key: str  # replies: f"{inbound_key}:{n}"; starts: the caller's, or the uid
    inbound_key: str | None = None
    inline: bool = False  # the transport answers inline (TwiML, simulator): never claimed
    held: bool = False  # not claimed before `Outbox.release` (its turn has not committed)
    expires_at: float | None = None
    channel: str = ""  # the transport's name, when the message does not carry one
    purpose: str = ""  # the consent it needs; "" means by kind (a broadcast's, else service)
    broadcast_id: str | None = None  # the broadcast it belongs to (palabre.broadcasts)

    @property
    def uid(self) -> str:
        """The message's id (32 hex), or a new one."""
        return self.message.id or uuid.uuid4().hex

    @property
    def consent(self) -> str:
        """The consent purpose the message needs: `broadcast` for broadcasts, else `service`."""
        return self.purpose or (BROADCAST if self.kind == "broadcast" else SERVICE)

    @property
    def transport(self) -> str:
        """The name of the transport that sends it ("twilio", "meta_cloud"...)."""
        name = self.message.transport or self.channel
        if not name:
            raise ValueError("a queued message needs a transport to send it")
        return name


@dataclass(frozen=True)
class Origin:
    """Who starts a flow for a contact, as its rows record it: `palabre start` (kind
    `start`), a broadcast (kind `broadcast`, its purpose and id), an outside event (kind
    `event`, with a time after which its messages are no use)."""

    kind: str = "start"
    purpose: str = ""  # "" means by kind
    broadcast_id: str | None = None
    expires_at: float | None = None  # not sent by then, it is `expired` (a notification's ttl)


STARTED, REPLIED = Origin(), Origin(kind="reply")


@dataclass(frozen=True)
class Row:
    """One outbox row as `palabre messages` and the worker see it (never a body)."""

    id: int
    uid: str
    channel: str
    contact_key: str
    kind: str
    purpose: str  # the consent it needs: "service" or "broadcast"
    status: str
    attempts: int
    error_code: str | None
    last_error: str | None
    provider_id: str | None
    created_at: float
    updated_at: float


ROW_COLUMNS = tuple(f.name for f in fields(Row))


def payload_of(message: Outbound) -> str:
    """The JSON a row keeps of a message: what the transport needs to send it again."""
    return json.dumps(
        {
            "text": message.text,
            "language": message.language,
            "options": [[option.id, option.title] for option in message.options],
            "image": message.image,
            "channel": message.channel,
            **({"template": message.template} if message.template else {}),
            **({"expires_at": message.expires_at} if message.expires_at else {}),
        },
        ensure_ascii=False,
    )


def outbound_of(uid: str, transport: str, address: str, payload: str) -> Outbound:
    """The message a row holds, rebuilt for its transport."""
    data: dict[str, Any] = json.loads(payload)
    return Outbound(
        contact=address,
        text=data.get("text", ""),
        language=data.get("language", ""),
        options=tuple(Option(str(i), str(t)) for i, t in data.get("options", [])),
        image=data.get("image"),
        channel=data.get("channel", ""),
        transport=transport,
        id=uid,
        template=data.get("template"),
        expires_at=data.get("expires_at"),
    )
