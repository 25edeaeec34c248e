"""What a broadcast will cost, found before anything is sent, by running its flow's first
turn for every line with no store and no action (a dry run).

Each line's own messages are rendered, in its language with its parameters, so the
figures are exact: the messages per recipient, and for SMS the encoding (GSM-7, or
UCS-2 as soon as one character needs it: Arabic, but also French `ê` or `’`) and the
segments each costs, which is what the operator bills. A line whose first turn fails (a
parameter its texts need and the CSV lacks) is skipped, with its line number, rather
than sending that contact an apology.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from palabre.actions import Action
from palabre.addresses import read_address
from palabre.broadcasts.audience import INVALID, Recipient
from palabre.errors import ActionError
from palabre.render import as_plain_text
from palabre.runtime import entrances
from palabre.runtime.engine import Engine
from palabre.runtime.entrances import Contact
from palabre.sms import encoding, segment_count


@dataclass
class LanguageCost:
    """The cost of one language's lines."""

    recipients: int = 0
    messages: int = 0
    segments: int = 0  # SMS segments, all its messages together
    encodings: set[str] = field(default_factory=set)

    @property
    def per_recipient(self) -> float:
        """SMS segments per recipient, on average."""
        return self.segments / self.recipients if self.recipients else 0.0


@dataclass
class Estimate:
    """A broadcast's cost, by language."""

    languages: dict[str, LanguageCost] = field(default_factory=dict)
    unknown: int = 0  # lines whose first turn runs an action before its messages

    @property
    def sendable(self) -> int:
        """The lines that will be started."""
        return self.recipients + self.unknown

    @property
    def recipients(self) -> int:
        """The lines that will be sent."""
        return sum(cost.recipients for cost in self.languages.values())

    @property
    def messages(self) -> int:
        """The messages the workers will send."""
        return sum(cost.messages for cost in self.languages.values())

    @property
    def segments(self) -> int:
        """The SMS segments the operator bills."""
        return sum(cost.segments for cost in self.languages.values())


class DryRunStopped(ActionError):
    """The dry run reached an action: it runs none, so it knows no more of the turn."""


class _NoActions(Mapping[str, Action]):
    """A dry run's actions: the first one called ends the dry run of that line."""

    def __getitem__(self, name: str) -> Action:
        raise DryRunStopped(f"a broadcast's dry run runs no action ('{name}')")

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:
        return 0


def contact_of(recipient: Recipient, transport: str) -> Contact:
    """Who a line's flow speaks to."""
    address = read_address(recipient.address)
    return Contact(str(address), transport, address.channel, recipient.language)


async def estimate(
    engine: Engine,
    flow_id: str,
    params: dict[str, str],
    recipients: list[Recipient],
    transport_of: Any,
) -> Estimate:
    """Dry-run the flow's first turn for each line to send; a line whose turn fails is
    marked `invalid` in place. `transport_of(recipient)` names its transport."""
    dry = copy.copy(engine)
    dry.actions = _NoActions()  # type: ignore[assignment]
    found = Estimate()
    for recipient in recipients:
        if recipient.skip is not None:
            continue
        contact = contact_of(recipient, transport_of(recipient))
        outcome = await entrances.start(dry, contact, flow_id, {**params, **recipient.params})
        failed = [event for event in outcome.events if event.name == "turn_failed"]
        error = failed[0].data.get("error", "an error") if failed else None
        if error == DryRunStopped.__name__:  # sendable; its cost is not known beforehand
            found.unknown += 1
        elif error:
            recipient.skip = INVALID
            recipient.detail = f"the flow's first turn failed on this line's data ({error})"
        else:
            _add(found, contact, outcome.messages)
    return found


def _add(found: Estimate, contact: Contact, messages: list[Any]) -> None:
    language = messages[0].language if messages else (contact.language or "")
    cost = found.languages.setdefault(language, LanguageCost())
    cost.recipients += 1
    cost.messages += len(messages)
    if contact.channel != "sms":
        return
    for message in messages:
        text = as_plain_text(message)
        cost.segments += segment_count(text)
        cost.encodings.add(encoding(text))
