"""The shape of a flow as a graph: where each step can go, and what each step sets."""

from __future__ import annotations

from palabre.flow.kinds import STEP_FIELDS
from palabre.flow.model import Flow, Step

# Set by the engine for every turn; `params` holds what a flow was started with (empty
# when the contact opened the conversation).
BUILTIN_VARIABLES = frozenset({"lang", "flow", "locale", "params"})


def exits(flow: Flow, step: Step) -> list[str]:
    """Every step id that `step` may continue to."""
    if step.kind in ("end", "handoff") or (step.kind == "goto" and step.get("flow")):
        return []
    if step.kind == "goto":
        return [step.get("step")]
    targets = [step.get(name) for name in STEP_FIELDS if step.get(name) and name != "step"]
    if step.kind == "branch":
        targets += [case.next for case in step.get("cases", [])]
        if not step.get("else") and flow.following(step.id):
            targets.append(flow.following(step.id))
    elif not step.get("next") and flow.following(step.id):
        targets.append(flow.following(step.id))
    return list(dict.fromkeys(t for t in targets if t))


def sets(step: Step) -> set[str]:
    """The variables a step sets once it is done."""
    names = set(step.get("vars", {})) if step.kind == "set" else set()
    if step.get("save_as"):
        names.add(step.get("save_as"))
    return names


def reachable(flow: Flow) -> set[str]:
    """Ids of the steps reachable from the start."""
    if not flow.steps:
        return set()
    seen, todo = {flow.start}, [flow.start]
    while todo:
        for target in exits(flow, flow.steps[todo.pop()]):
            if target in flow.steps and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def variables_before(flow: Flow) -> dict[str, set[str]]:
    """For each step, the variables that at least one path from the start has set."""
    known: dict[str, set[str]] = {step_id: set() for step_id in flow.steps}
    changed = True
    while changed:
        changed = False
        for step in flow.steps.values():
            out = known[step.id] | sets(step)
            for target in exits(flow, step):
                if target in known and not out <= known[target]:
                    known[target] |= out
                    changed = True
    return known
