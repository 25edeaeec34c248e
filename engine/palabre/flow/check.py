"""Checks that need the whole flow: references, reachability, templates and translations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from palabre.actions import Action
from palabre.errors import Problem
from palabre.flow.arguments import argument_problems
from palabre.flow.conditions import unreadable
from palabre.flow.graph import BUILTIN_VARIABLES, exits, reachable, sets, variables_before
from palabre.flow.kinds import STEP_FIELDS
from palabre.flow.model import Flow, Step, Text, Where
from palabre.flow.suggest import closest, did_you_mean, known_list
from palabre.flow.template_check import template_findings
from palabre.flow.window_check import window_findings
from palabre.i18n.catalogs import Catalogs
from palabre.i18n.templates import PARSE_FAILURES, Templates

BUTTONS, BUTTON_TITLE, LIST_ROWS, ROW_TITLE, BODY = 3, 20, 10, 24, 1024
ENGINE_VARIABLES = BUILTIN_VARIABLES | {"event"}  # `event`: what started an event's flow


@dataclass
class Checker:
    """Collects problems about one flow, each located in the flow's file."""

    flow: Flow
    templates: Templates
    catalogs: Catalogs
    actions: Mapping[str, Action] | Iterable[str] = ()  # with Actions, arguments are checked
    flow_ids: Iterable[str] = ()
    problems: list[Problem] = field(default_factory=list)

    def add(
        self,
        where: Where,
        path: str,
        message: str,
        hint: str = "",
        warn: bool = False,
        topic: str = "flow",
    ) -> None:
        severity = "warning" if warn else "error"
        file = self.flow.file
        self.problems.append(Problem(file, *where, path, message, hint, severity, topic))

    def run(self) -> list[Problem]:
        self.check_references()
        self.check_reachable()
        self.check_names()
        self.check_templates()
        self.check_translations()
        self.check_window()
        return sorted(self.problems)

    def check_window(self) -> None:
        """WhatsApp templates: whole, and declared where the 24-hour window may be shut."""
        for step, path, message, warn in window_findings(self.flow):
            where = step.field_where.get(path.split(".")[0], step.where)
            self.add(where, f"steps.{step.id}.{path}", message, warn=warn)

    def check_references(self) -> None:
        steps = self.flow.steps
        for step in steps.values():
            for name in STEP_FIELDS:
                self._reference(step, name, step.get(name))
            for i, case in enumerate(step.get("cases", [])):
                self._reference(step, f"cases[{i}].next", case.next, case.where)
            self._flow_and_action(step)

    def _reference(
        self, step: Step, name: str, target: str | None, where: Where | None = None
    ) -> None:
        if target is None or target in self.flow.steps:
            return
        where = where or step.field_where.get(name, step.where)
        self.add(
            where,
            f"steps.{step.id}.{name}",
            f"unknown step '{target}' ({known_list(self.flow.steps)})",
            did_you_mean(target, self.flow.steps),
        )

    def _flow_and_action(self, step: Step) -> None:
        target = step.get("flow")
        flow_ids = set(self.flow_ids) | {self.flow.id}
        if target and target not in flow_ids:
            self.add(
                step.field_where["flow"],
                f"steps.{step.id}.flow",
                f"unknown flow '{target}' ({known_list(flow_ids)})",
                did_you_mean(target, flow_ids),
            )
        action = step.get("action")
        actions = set(self.actions)
        if action and action not in actions:
            self.add(
                step.field_where["action"],
                f"steps.{step.id}.action",
                f"unknown action '{action}'",
                closest(action, actions) or "no plugin offers it",
            )
        elif action and isinstance(self.actions, Mapping):
            for where, path, message, hint in argument_problems(
                self.flow, step, self.actions[action]
            ):
                self.add(where, path, message, hint)

    def check_reachable(self) -> None:
        seen = reachable(self.flow)
        for step in self.flow.steps.values():
            if step.id not in seen:
                self.add(
                    step.where,
                    f"steps.{step.id}",
                    "this step can never be reached",
                    "point a `next` at it, or remove it",
                    warn=True,
                )

    def check_names(self) -> None:
        """No step may set a variable the engine sets: it would hide it, or be lost."""
        listed = ", ".join(sorted(ENGINE_VARIABLES))
        for step in self.flow.steps.values():
            for name in sorted(sets(step) & ENGINE_VARIABLES):
                field = "save_as" if step.get("save_as") == name else "vars"
                self.add(
                    step.field_where.get(field, step.where),
                    f"steps.{step.id}.{field}",
                    f"'{name}' is a variable the engine sets ({listed})",
                    f"pick another name, such as {name}_answer",
                )

    def check_templates(self) -> None:
        before = variables_before(self.flow)
        live = reachable(self.flow)
        # A flow outside events start reads the event that started it.
        builtins = BUILTIN_VARIABLES | ({"event"} if self.flow.events else set())
        for step in self.flow.steps.values():
            # An unreachable step is already reported; its variables would only add noise.
            known = before[step.id] | builtins if step.id in live else None
            for name, source, expression, extra in _templates_of(step):
                self._template(
                    step, name, source, None if known is None else known | extra, expression
                )

    def _template(
        self, step: Step, name: str, source: str, known: set[str] | None, expr: bool
    ) -> None:
        where = self.flow.locate("steps", step.id, *_path_parts(name))
        path = f"steps.{step.id}.{name}"
        try:
            parsed = self.templates.parse(source, expression=expr)
        except PARSE_FAILURES as exc:
            self.add(where, path, *unreadable(source, exc, expression=expr))
            return
        for found in template_findings(parsed, self.templates.env, self.templates.limits):
            line = f"line {found.line} of the template: " if "\n" in source.strip() else ""
            self.add(where, path, line + found.message, found.hint, warn=found.warn)
        if known is None:
            return
        for variable in sorted(self.templates.variables(source, expression=expr) - known):
            self.add(
                where,
                path,
                f"'{variable}' is not set on any path to this step",
                did_you_mean(variable, known) or "set it with save_as or a `set` step first",
            )

    def check_translations(self) -> None:
        for path, text in self.flow.texts():
            for locale in self.flow.settings.locales:
                self._limits(path, text, locale)
                if locale == self.flow.settings.source_locale:
                    continue
                if not self.catalogs.is_translated(locale, text.msgid):
                    self.add(
                        text.where,
                        path,
                        f"no '{locale}' translation of \"{_short(text)}\"",
                        f"run `palabre i18n update`, then translate it in the {locale} PO file",
                        topic="translation",
                    )
                else:
                    self._translation(path, text, locale)
                    for form in self.catalogs.empty_plural_forms(locale, text.msgid):
                        message = f"the '{locale}' translation lacks {form}"
                        hint = f"fill it in the {locale} PO file"
                        self.add(text.where, path, message, hint, warn=True, topic="translation")

    def _translation(self, path: str, text: Text, locale: str) -> None:
        """A translation must compile and use only the variables its source uses."""
        translated = self.catalogs.gettext(locale, text.msgid)
        error = self.templates.syntax_error(translated)
        if error:
            self.add(
                text.where,
                path,
                f"the '{locale}' translation has a template error: {error}",
                topic="translation",
            )
            return
        env, limits = self.templates.env, self.templates.limits
        for found in template_findings(self.templates.parse(translated), env, limits):
            message = f"the '{locale}' translation: {found.message}"
            self.add(text.where, path, message, found.hint, found.warn, topic="translation")
        extra = self.templates.variables(translated) - self.templates.variables(text.msgid)
        if extra:
            self.add(
                text.where,
                path,
                f"the '{locale}' translation uses {', '.join(sorted(extra))}"
                ", which the source text does not",
                "copy the {{ }} names from the source",
                topic="translation",
            )

    def _limits(self, path: str, text: Text, locale: str) -> None:
        rendered = self.catalogs.gettext(locale, text.msgid)
        limit, what = _limit_for(path, self.flow, self._count_choices(path))
        if len(rendered) > limit:
            self.add(
                text.where,
                path,
                f"{what} is {len(rendered)} characters in '{locale}', "
                f"over WhatsApp's limit of {limit}",
                "shorten it",
            )

    def _count_choices(self, path: str) -> int:
        step_id = path.split(".")[1]
        return len(self.flow.steps[step_id].get("choices", []))


def _limit_for(path: str, flow: Flow, choices: int) -> tuple[int, str]:
    if path.endswith(".title") and choices <= BUTTONS:
        return BUTTON_TITLE, "this button title"
    if path.endswith(".title") and choices <= LIST_ROWS:
        return ROW_TITLE, "this list row title"
    return BODY, "this message"


def _path_parts(name: str) -> list[str | int]:
    """`cases[0].when` as the path ("cases", 0, "when"), to locate it in the file."""
    parts: list[str | int] = []
    for part in name.replace("[", ".").replace("]", "").split("."):
        parts.append(int(part) if part.isascii() and part.isdigit() else part)
    return parts


def _short(text: Text) -> str:
    return text.msgid if len(text.msgid) <= 40 else text.msgid[:37] + "..."


def _templates_of(step: Step) -> list[tuple[str, str, bool, set[str]]]:
    """(field name, source, is-an-expression, extra variables) for each template of a step."""
    found: list[tuple[str, str, bool, set[str]]] = []
    for name in ("text", "reprompt"):
        text = step.get(name)
        if isinstance(text, Text):
            found += [(name, s, False, set()) for s in {text.msgid, *dict(text.forms).values()}]
            if text.count:
                found.append((name, text.count, True, set()))
    for choice in step.get("choices", []):
        found.append(("choices", choice.title.msgid, False, set()))
    if step.get("save"):
        found.append(("save", step.get("save"), False, {"value"}))
    if step.get("image"):
        found.append(("image", step.get("image"), False, set()))
    earlier: set[str] = set()
    for key, value in step.get("vars", {}).items():
        found.append((f"vars.{key}", str(value), False, set(earlier)))
        earlier.add(key)
    for key, value in step.get("with", {}).items():
        if isinstance(value, str):
            found.append((f"with.{key}", value, False, set()))
    for i, case in enumerate(step.get("cases", [])):
        found.append((f"cases[{i}].when", case.when, True, set()))
    return found


def check_flow(
    flow: Flow,
    templates: Templates,
    catalogs: Catalogs,
    *,
    actions: Mapping[str, Action] | Iterable[str] = (),
    flow_ids: Iterable[str] = (),
) -> list[Problem]:
    """Every whole-flow problem of `flow`."""
    return Checker(flow, templates, catalogs, actions, flow_ids).run()


__all__ = ["check_flow", "exits"]
