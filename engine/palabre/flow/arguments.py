"""An action step's `with:` arguments, against what the action declares it takes."""

from __future__ import annotations

from palabre.actions import Action
from palabre.flow.model import Flow, Step, Where
from palabre.flow.suggest import did_you_mean

Finding = tuple[Where, str, str, str]  # where, path, message, hint


def argument_problems(flow: Flow, step: Step, action: Action) -> list[Finding]:
    """Arguments the action does not take, and required ones left out.

    An action that declares no `parameters` takes any argument; `required` always counts.
    """
    given = step.get("with") or {}
    found: list[Finding] = []
    if action.parameters:
        takes = ", ".join(action.parameters)
        for name in given:
            if name not in action.parameters:
                found.append(
                    (
                        flow.locate("steps", step.id, "with", name),
                        f"steps.{step.id}.with.{name}",
                        f"'{action.name}' takes no argument '{name}' (it takes: {takes})",
                        did_you_mean(name, action.parameters),
                    )
                )
    where = step.field_where.get("with", step.field_where.get("action", step.where))
    for name in action.required:
        if name not in given:
            found.append(
                (
                    where,
                    f"steps.{step.id}.with",
                    f"'{action.name}' needs the argument '{name}'",
                    f"add `{name}:` under `with:`",
                )
            )
    return found
