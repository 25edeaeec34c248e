"""`palabre check` on WhatsApp templates: what an event-triggered flow sends outside the
24-hour window, and whether each declared template is whole.

A flow started by an event speaks first, maybe to someone who has not written for days:
every message of its first turn (from the first step to the first question, on every
branch) may leave outside the window, where only an approved template gets through. A
step there with no `template` is warned about (on WhatsApp it fails as `window_closed`;
SMS is unaffected). Steps after a question run in answer to the person, inside the window.

A declared template is checked for what Palabre can know without asking the providers:
`meta` has a `name`; `twilio` has a `content_sid` (HX...), or one per language
(`{fr: HX..., ar: HX...}`: each of the flow's languages should have its own, else the
default language's is sent), and `variables` keyed "1", "2"... without a gap; and when both
are declared, Meta's body parameters are as many as Twilio's variables (the same template,
approved twice).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

from palabre.flow.graph import exits
from palabre.flow.model import Flow, Step

SENDS = ("say", "ask", "end")
Finding = tuple[Step, str, str, bool]  # the step, the field, the message, a warning


def window_findings(flow: Flow) -> Iterator[Finding]:
    """The problems of `flow`'s templates, and the first-turn steps without one."""
    if flow.events:
        for step in first_turn(flow):
            if step.kind in SENDS and step.get("text") and not step.get("template"):
                yield (
                    step,
                    "template",
                    "this step may be sent outside WhatsApp's 24-hour window (the flow "
                    f"starts on {', '.join(flow.events)}) and declares no template: on "
                    "WhatsApp it would fail as window_closed",
                    True,
                )
    for step in flow.steps.values():
        declared = step.get("template")
        if isinstance(declared, dict):
            yield from ((step, path, message, False) for path, message in _whole(declared))
            yield from ((step, path, message, True) for path, message in _languages(flow, declared))


def first_turn(flow: Flow) -> list[Step]:
    """The steps a flow may run before it first waits for an answer, on every branch."""
    seen: list[Step] = []
    queue = [flow.start] if flow.steps else []
    while queue:
        step = flow.steps.get(queue.pop(0))
        if step is None or step in seen:
            continue
        seen.append(step)
        if step.kind != "ask":
            queue += exits(flow, step)
    return seen


def _whole(template: dict[str, Any]) -> Iterator[tuple[str, str]]:
    unknown = set(template) - {"meta", "twilio"}
    if unknown:
        yield "template", f"unknown provider(s) {', '.join(sorted(unknown))}: meta or twilio"
    meta, twilio = template.get("meta"), template.get("twilio")
    if meta is not None and not (isinstance(meta, dict) and meta.get("name")):
        yield "template.meta", "a Meta template needs its approved `name`"
    variables = None
    if twilio is not None:
        variables = yield from _twilio(twilio)
    if isinstance(meta, dict) and variables is not None:
        parameters = _body_parameters(meta)
        if parameters is not None and parameters != variables:
            yield (
                "template",
                f"Meta's body has {parameters} parameters and Twilio's template {variables} "
                "variables: the same template should have as many of each",
            )


def _languages(flow: Flow, template: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """A warning for each of the flow's languages that a per-language sid leaves out."""
    twilio = template.get("twilio")
    sids = twilio.get("content_sid") if isinstance(twilio, dict) else None
    if not isinstance(sids, dict):
        return
    default = flow.settings.default_locale
    for missing in [lang for lang in flow.settings.locales if lang not in sids]:
        yield (
            "template.twilio.content_sid",
            f"no content sid for {missing}: those contacts would get the {default} one",
        )


def _twilio(twilio: Any) -> Generator[tuple[str, str], None, int | None]:
    if not isinstance(twilio, dict) or not _content_sids(twilio.get("content_sid")):
        yield (
            "template.twilio",
            "a Twilio template needs its `content_sid` (HX...), or one per language "
            "({fr: HX..., en: HX...})",
        )
        return None
    variables = twilio.get("variables") or {}
    keys = {str(k) for k in variables} if isinstance(variables, dict) else None
    if keys is None or keys != {str(n) for n in range(1, len(keys) + 1)}:
        yield "template.twilio.variables", 'variables are keyed "1", "2"... with no gap'
        return None
    return len(keys)


def _content_sids(sid: Any) -> bool:
    """An HX content sid, or a mapping of languages to HX content sids."""
    if isinstance(sid, dict):
        return bool(sid) and all(str(one).startswith("HX") for one in sid.values())
    return str(sid or "").startswith("HX")


def _body_parameters(meta: dict[str, Any]) -> int | None:
    components = meta.get("components") or []
    if not isinstance(components, list):
        return None
    bodies = [c for c in components if isinstance(c, dict) and c.get("type") == "body"]
    return sum(len(b.get("parameters") or []) for b in bodies)
