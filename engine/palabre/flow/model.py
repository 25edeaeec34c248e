"""The flow model: what the loader builds from YAML and the runtime walks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Where = tuple[int, int]


@dataclass(frozen=True)
class Text:
    """A translatable message template; `msgid` is its source-language text.

    With `plural`, the text is chosen by the plural rules of the contact's language
    for the number that the Jinja expression `count` gives; `forms` holds the source
    texts by CLDR category (`one`, `few`, `other`...), `msgid` being `one` and `plural`
    being `other`.
    """

    msgid: str
    plural: str | None = None
    count: str | None = None
    where: Where = (0, 0)
    forms: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Choice:
    """One answer offered by a question: a button, a list row or a numbered line."""

    id: str
    title: Text
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    """One branch: when the Jinja expression `when` is true, go to `next`."""

    when: str
    next: str
    where: Where = (0, 0)


@dataclass
class Step:
    """One step of a flow. `fields` holds the step's parsed settings by name."""

    id: str
    kind: str
    fields: dict[str, Any]
    where: Where
    field_where: dict[str, Where] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)


@dataclass
class FlowSettings:
    """Per-flow settings, with the defaults a new flow gets."""

    default_locale: str = "fr"
    locales: tuple[str, ...] = ("fr", "ar", "en")
    source_locale: str = "en"
    expires_after: int = 72 * 3600
    secret_env: str = "PALABRE_SECRET"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Flow:
    """A conversation: triggers that start it, settings, and steps in file order."""

    id: str
    title: str
    file: str
    settings: FlowSettings
    steps: dict[str, Step]
    triggers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    default: bool = False
    events: tuple[str, ...] = ()  # outside events that start it (`triggers: {event: ...}`)
    event_purpose: str = "service"  # the consent its event messages need (`purpose:`)
    where: Where = (1, 1)
    positions: dict[tuple[str | int, ...], Where] = field(default_factory=dict, repr=False)

    def locate(self, *path: str | int) -> Where:
        """(line, column) where `path` (e.g. "settings", "dhis2", "program") is written."""
        while path and path not in self.positions:
            path = path[:-1]
        return self.positions.get(path, self.where)

    @property
    def start(self) -> str:
        return next(iter(self.steps))

    def following(self, step_id: str) -> str | None:
        """The step written after `step_id`: where a step with no `next` goes."""
        ids = list(self.steps)
        index = ids.index(step_id) + 1
        return ids[index] if index < len(ids) else None

    def next_of(self, step: Step) -> str | None:
        """Where `step` continues: its `next`, else the following step in the file."""
        return step.get("next") or self.following(step.id)

    def texts(self) -> list[tuple[str, Text]]:
        """Every translatable text in the flow, with the dotted path where it is written."""
        found: list[tuple[str, Text]] = []
        for step in self.steps.values():
            for name, value in step.fields.items():
                path = f"steps.{step.id}.{name}"
                if isinstance(value, Text):
                    found.append((path, value))
                elif name == "choices":
                    found += [(f"{path}[{i}].title", c.title) for i, c in enumerate(value)]
        return found
