"""Walking a flow: run steps from one point until the flow waits for the contact or ends.

Each step kind has one small function here. A step function returns the id of the step
to run next, or None when the conversation now waits (a question was asked) or ended.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from palabre.errors import ActionError, PalabreError
from palabre.i18n import messages as texts

if TYPE_CHECKING:
    from palabre.flow.model import Step
    from palabre.runtime.turn import Turn

log = logging.getLogger("palabre.steps")

MAX_STEPS_PER_TURN = 100

StepFunction = Callable[["Turn", "Step"], Awaitable[str | None]]


class FlowLoopError(PalabreError):
    """A flow ran too many steps in one turn without waiting for the contact."""


async def run_from(turn: Turn, step_id: str | None) -> None:
    """Run steps from `step_id` until the flow waits or ends."""
    for _ in range(MAX_STEPS_PER_TURN):
        if turn.session is None or turn.waiting:
            return
        if step_id is None:  # ran past the last step
            turn.finish("flow_completed")
            return
        step = turn.flow.steps[step_id]
        turn.session["step"] = step.id
        step_id = await STEP_FUNCTIONS[step.kind](turn, step)
    raise FlowLoopError(
        f"{turn.flow.file}: flow '{turn.flow.id}' ran {MAX_STEPS_PER_TURN} "
        "steps without waiting for an answer: check for a loop of goto steps"
    )


async def say(turn: Turn, step: Step) -> str | None:
    turn.send_text(step, "text")
    return turn.flow.next_of(step)


async def ask(turn: Turn, step: Step) -> str | None:
    assert turn.session is not None
    turn.session["tries"] = 0
    turn.ask(step)
    return None


async def set_vars(turn: Turn, step: Step) -> str | None:
    for name, template in step.get("vars", {}).items():
        where = f"{turn.where(step)}.vars.{name}"
        turn.variables_set(name, turn.render(str(template), where))
    return turn.flow.next_of(step)


async def branch(turn: Turn, step: Step) -> str | None:
    for i, case in enumerate(step.get("cases", [])):
        if turn.evaluate(case.when, f"{turn.where(step)}.cases[{i}].when"):
            return case.next
    return step.get("else") or turn.flow.following(step.id)


async def action(turn: Turn, step: Step) -> str | None:
    try:
        result = await turn.call_action(step)
    except ActionError as exc:
        log.warning("action %s failed at step %s: %s", step.get("action"), step.id, exc)
        turn.event("action_failed", action=step.get("action"), step=step.id)
        if exc.user_message:
            turn.send_plain(exc.user_message)
        if not step.get("on_error"):
            raise
        return str(step.get("on_error"))
    if step.get("save_as"):
        turn.variables_set(step.get("save_as"), result)
    return turn.flow.next_of(step)


async def consent(turn: Turn, step: Step) -> str | None:
    """The engine writes the event to the consent ledger before the turn commits."""
    granted = step.get("granted")
    given = True if granted is None else bool(turn.evaluate(granted, f"{turn.where(step)}.granted"))
    name = "consent_given" if given else "consent_withdrawn"
    turn.event(name, purpose=step.get("purpose"), source="flow", detail=turn.flow.id)
    return turn.flow.next_of(step)


async def goto(turn: Turn, step: Step) -> str | None:
    if step.get("flow"):
        return turn.switch_flow(step.get("flow"))
    return str(step.get("step"))


async def end(turn: Turn, step: Step) -> str | None:
    if step.get("text"):
        turn.send_text(step, "text")
    turn.finish("flow_completed")
    return None


async def handoff(turn: Turn, step: Step) -> str | None:
    if step.get("text"):
        turn.send_text(step, "text")
    else:
        turn.send_plain(texts.HANDOFF_WAIT)
    assert turn.session is not None
    turn.session["state"] = "handoff"
    turn.waiting = True
    turn.event("handoff_requested", queue=step.get("queue", "default"), step=step.id)
    return None


STEP_FUNCTIONS: dict[str, StepFunction] = {
    "say": say,
    "ask": ask,
    "set": set_vars,
    "branch": branch,
    "action": action,
    "consent": consent,
    "goto": goto,
    "end": end,
    "handoff": handoff,
}
