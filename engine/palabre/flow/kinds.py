"""The step kinds a flow may use, and the fields each one takes.

This table is the single source of truth for the loader's key checks, the JSON Schema
and the documentation. A step with no `next` continues with the step written after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldSpec:
    type: str
    doc: str
    required: bool = False


@dataclass(frozen=True)
class KindSpec:
    doc: str
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    one_of: tuple[str, ...] = ()  # exactly one of these fields is required


NEXT = FieldSpec("step", "the step that follows (default: the next one in the file)")
TEMPLATE = FieldSpec(
    "mapping",
    "the approved WhatsApp template sent instead outside the 24-hour window: "
    "{meta: {name, language, components}, twilio: {content_sid, variables}}; content_sid "
    "may be one per language ({fr: HX..., en: HX...})",
)
TTL = FieldSpec(
    "duration",
    "how long the message is worth sending (e.g. 5m): not sent by then, it is `expired`, "
    "never sent late",
)

KINDS: dict[str, KindSpec] = {
    "say": KindSpec(
        "Send a message, then continue.",
        {
            "text": FieldSpec("text", "the message (a Jinja template)", True),
            "image": FieldSpec("str", "a template giving a media id to attach (empty: none)"),
            "template": TEMPLATE,
            "ttl": TTL,
            "next": NEXT,
        },
    ),
    "ask": KindSpec(
        "Ask a question and wait for a valid answer.",
        {
            "text": FieldSpec("text", "the question", True),
            "save_as": FieldSpec("name", "the variable that receives the answer", True),
            "template": TEMPLATE,
            "ttl": TTL,
            "choices": FieldSpec("choices", "answers offered as buttons, a list or numbers"),
            "normalize": FieldSpec("words", "cleaners applied before validation, in order"),
            "validate": FieldSpec("mapping", "rules the cleaned answer must pass"),
            "save": FieldSpec("str", "a template computing the stored value from `value`"),
            "reprompt": FieldSpec("text", "said before the question when an answer is refused"),
            "max_retries": FieldSpec("int", "refused answers allowed before on_exhausted"),
            "on_exhausted": FieldSpec("step", "where to go after too many refused answers"),
            "next": NEXT,
        },
    ),
    "set": KindSpec(
        "Set variables from templates.",
        {"vars": FieldSpec("templates", "name: template pairs", True), "next": NEXT},
    ),
    "branch": KindSpec(
        "Go to the first case whose condition holds.",
        {
            "cases": FieldSpec("cases", "a list of {when: <expression>, next: <step>}", True),
            "else": FieldSpec("step", "where to go when no case holds (default: next in file)"),
        },
    ),
    "action": KindSpec(
        "Call a plugin action.",
        {
            "action": FieldSpec("str", "the action's name, e.g. registry.remember", True),
            "with": FieldSpec("templates", "the action's arguments (templates)"),
            "save_as": FieldSpec("name", "the variable that receives the action's result"),
            "on_error": FieldSpec("step", "where to go when the action fails"),
            "next": NEXT,
        },
    ),
    "consent": KindSpec(
        "Record that the contact gives (or withdraws) consent to a purpose, then continue.",
        {
            "purpose": FieldSpec("purpose", "service or broadcast", True),
            "granted": FieldSpec(
                "str", "an expression: true gives consent, false withdraws it (default: true)"
            ),
            "next": NEXT,
        },
    ),
    "goto": KindSpec(
        "Jump to another step, or start another flow.",
        {
            "step": FieldSpec("step", "the step to go to"),
            "flow": FieldSpec("name", "the id of the flow to start"),
        },
        one_of=("step", "flow"),
    ),
    "end": KindSpec(
        "End the conversation.",
        {
            "text": FieldSpec("text", "a last message"),
            "image": FieldSpec("str", "a template giving a media id to attach (empty: none)"),
            "template": TEMPLATE,
            "ttl": TTL,
        },
    ),
    "handoff": KindSpec(
        "Hand the conversation to a human agent; the bot stops replying.",
        {
            "text": FieldSpec("text", "told to the contact while they wait"),
            "queue": FieldSpec("name", "the agents' queue (default: default)"),
        },
    ),
}

COMMON = {"kind": FieldSpec("str", "what the step does", True)}

# Fields naming another step of the same flow: checked for existence and reachability.
STEP_FIELDS = ("next", "on_exhausted", "on_error", "else", "step")
