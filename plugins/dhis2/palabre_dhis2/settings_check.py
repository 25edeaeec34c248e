"""`palabre check` for the `settings.dhis2` section, located as file:line:column.

A flow that calls `dhis2.find` or `dhis2.register` needs the section; every key must be
known, the four UIDs present and shaped like DHIS-2 UIDs, and `org_unit_mode` a mode.
"""

from __future__ import annotations

from typing import Any

from palabre.errors import Problem
from palabre.flow.model import Flow
from palabre.flow.suggest import closest
from palabre_dhis2.params import MODES
from palabre_dhis2.program import OPTIONAL, REQUIRED, SECTION
from palabre_dhis2.uid import is_uid

NEEDS_SECTION = ("dhis2.find", "dhis2.register")


def check_dhis2_settings(flow: Flow) -> list[Problem]:
    """Every problem in the flow's `settings.dhis2` section, or in its absence."""
    section = flow.settings.extra.get(SECTION)
    if section is None:
        return _missing_section(flow)
    if not isinstance(section, dict):
        return [_problem(flow, (), "settings.dhis2 must be a mapping of names to UIDs")]
    problems: list[Problem | None] = [
        _problem(flow, (key,), f"unknown key '{key}'", closest(str(key), (*REQUIRED, *OPTIONAL)))
        for key in section
        if key not in (*REQUIRED, *OPTIONAL)
    ]
    missing = [key for key in REQUIRED if key not in section]
    if missing:
        problems.append(
            _problem(flow, (), f"missing {', '.join(missing)}", "each is an 11-character UID")
        )
    problems += [_bad_uid(flow, key, section[key]) for key in REQUIRED if key in section]
    mode = section.get("org_unit_mode")
    if mode is not None and mode not in MODES:
        problems.append(
            _problem(flow, ("org_unit_mode",), f"unknown mode '{mode}'", closest(str(mode), MODES))
        )
    return [p for p in problems if p is not None]


def _bad_uid(flow: Flow, key: str, value: Any) -> Problem | None:
    if is_uid(value):
        return None
    return _problem(
        flow,
        (key,),
        f"'{value}' is not a DHIS-2 UID",
        "11 letters or digits, starting with a letter, e.g. IpHINAT79UW",
    )


def _missing_section(flow: Flow) -> list[Problem]:
    return [
        Problem(
            flow.file,
            *flow.locate("steps", step.id, "action"),
            f"steps.{step.id}.action",
            f"{step.get('action')} needs a settings.dhis2 section",
            f"give {', '.join(REQUIRED)}",
        )
        for step in flow.steps.values()
        if step.kind == "action" and step.get("action") in NEEDS_SECTION
    ]


def _problem(flow: Flow, path: tuple[str, ...], message: str, hint: str = "") -> Problem:
    where = flow.locate("settings", SECTION, *path)
    dotted = ".".join(("settings", SECTION, *path))
    return Problem(flow.file, *where, dotted, message, hint)
