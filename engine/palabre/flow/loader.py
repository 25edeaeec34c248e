"""Build a `Flow` from a YAML file, reporting every structural problem with its location."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from palabre.errors import FlowError, Problem
from palabre.flow.answers import NORMALIZERS, RULES
from palabre.flow.fields import MISSING, NAME, TYPES
from palabre.flow.kinds import COMMON, KINDS, KindSpec
from palabre.flow.model import Flow, FlowSettings, Step
from palabre.flow.source import PathKey, Source, read_source
from palabre.flow.suggest import closest

TOP_KEYS = {"id", "title", "triggers", "settings", "steps"}
EVENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
SETTINGS_TYPES = {
    "default_locale": "str",
    "locales": "words",
    "source_locale": "str",
    "expires_after": "duration",
    "secret_env": "str",
}
SUPPORTED_LOCALES = ("fr", "ar", "en")
PARAM_WORDS = {
    "bool": "true or false",
    "int": "a whole number of 0 or more",
    "number": "a number",
    "regex": "a valid regular expression",
    "date": "true, or a date format such as %d/%m/%Y",
}


def load_flow(path: str | Path) -> Flow:
    """Load one flow file, raising FlowError that lists every problem found."""
    flow, problems = parse_flow(read_source(path))
    if problems or flow is None:
        raise FlowError(problems)
    return flow


def parse_flow(source: Source) -> tuple[Flow | None, list[Problem]]:
    """Parse a Source into a Flow; structural problems are returned, never raised."""
    data = source.data
    if source.problems:
        return None, source.problems
    if not isinstance(data, dict):
        source.problem((), "a flow file must be a mapping with id, title and steps")
        return None, source.problems
    _check_keys(source, (), data, TOP_KEYS)
    for key in ("id", "steps"):
        if key not in data:
            source.problem((), f"missing '{key}'", "every flow needs an id and steps")
    flow_id = data.get("id")
    if flow_id is not None and not (isinstance(flow_id, str) and NAME.match(flow_id)):
        source.problem(("id",), f"'{flow_id}' is not a valid flow id", "use letters, digits, _")
    flow = Flow(
        id=str(flow_id or Path(source.file).stem),
        title=str(data.get("title", "")),
        file=source.file,
        settings=_settings(source, data.get("settings", {})),
        steps=_steps(source, data.get("steps", {})),
        positions=source.positions,
    )
    flow.triggers, flow.default, flow.events = _triggers(source, data.get("triggers", {}))
    flow.event_purpose = _event_purpose(source, data.get("triggers", {}))
    return flow, sorted(source.problems)


def _check_keys(source: Source, path: PathKey, data: dict[str, Any], known: set[str]) -> None:
    for key in data:
        if key not in known:
            source.problem((*path, key), f"unknown key '{key}'", closest(key, known), key=True)


def _field(source: Source, path: PathKey, type_name: str, value: Any) -> Any:
    return TYPES[type_name].parse(source, path, value)


def _settings(source: Source, raw: Any) -> FlowSettings:
    settings = FlowSettings()
    if not isinstance(raw, dict):
        source.problem(("settings",), "settings must be a mapping")
        return settings
    for key, value in raw.items():
        path = ("settings", key)
        if key not in SETTINGS_TYPES:
            settings.extra[key] = value
            continue
        parsed = _field(source, path, SETTINGS_TYPES[key], value)
        if parsed is not MISSING:
            setattr(settings, key, parsed)
    for key in ("default_locale", "source_locale"):
        _check_locale(source, ("settings", key), getattr(settings, key))
    for i, locale in enumerate(settings.locales):
        _check_locale(source, ("settings", "locales", i), locale)
    if settings.default_locale not in settings.locales:
        source.problem(("settings", "default_locale"), "the default locale is not in `locales`")
    return settings


def _check_locale(source: Source, path: PathKey, locale: str) -> None:
    if locale not in SUPPORTED_LOCALES:
        source.problem(path, f"unsupported locale '{locale}'", closest(locale, SUPPORTED_LOCALES))


def _triggers(source: Source, raw: Any) -> tuple[dict[str, tuple[str, ...]], bool, tuple[str, ...]]:
    """Keywords per locale, `default: true`, and `event:` names (outside events)."""
    if not isinstance(raw, dict):
        source.problem(
            ("triggers",), "triggers must map a locale to keywords, default: true, or event:"
        )
        return {}, False, ()
    words: dict[str, tuple[str, ...]] = {}
    default = False
    events: tuple[str, ...] = ()
    for key, value in raw.items():
        path = ("triggers", key)
        if key == "default":
            default = _field(source, path, "bool", value) is True
            continue
        if key == "event":
            events = _events(source, path, value)
            continue
        if key == "purpose":
            continue  # read by _event_purpose
        _check_locale(source, path, key)
        parsed = _field(source, path, "words", value)
        if parsed is not MISSING:
            words[key] = parsed
    return words, default, events


def _event_purpose(source: Source, raw: Any) -> str:
    """`triggers: {purpose: broadcast}`: the consent the event's messages need."""
    value = raw.get("purpose", "service") if isinstance(raw, dict) else "service"
    if value not in ("service", "broadcast"):
        source.problem(("triggers", "purpose"), "purpose is service or broadcast")
        return "service"
    return str(value)


def _events(source: Source, path: PathKey, value: Any) -> tuple[str, ...]:
    names = _field(source, path, "words", value)
    if names is MISSING:
        return ()
    for name in names:
        if not EVENT_NAME.fullmatch(name):
            source.problem(
                path,
                f"'{name}' is no event name: letters, digits, '.', '_' or '-', like ticket.called",
            )
    return tuple(names)


def _steps(source: Source, raw: Any) -> dict[str, Step]:
    if not isinstance(raw, dict) or not raw:
        source.problem(
            ("steps",),
            "steps must be a mapping of step names to steps",
            "write steps:\\n  welcome:\\n    kind: say\\n    text: Hello",
        )
        return {}
    steps = {}
    for step_id, body in raw.items():
        path = ("steps", step_id)
        if not NAME.match(step_id):
            source.problem(path, f"'{step_id}' is not a valid step name", key=True)
        step = _step(source, path, step_id, body)
        if step is not None:
            steps[step_id] = step
    return steps


def _step(source: Source, path: PathKey, step_id: str, body: Any) -> Step | None:
    if not isinstance(body, dict):
        source.problem(path, "a step must be a mapping with a `kind`")
        return None
    kind = body.get("kind")
    if kind not in KINDS:
        message = f"unknown step kind '{kind}'" if kind else "missing `kind`"
        source.problem((*path, "kind") if kind else path, message, closest(str(kind), KINDS))
        return None
    spec = KINDS[kind]
    _check_keys(source, path, body, set(spec.fields) | set(COMMON))
    step = Step(step_id, kind, {}, source.where(path, key=True))
    for name, field_spec in spec.fields.items():
        if name not in body:
            if field_spec.required:
                source.problem(
                    path,
                    f"a '{kind}' step needs `{name}`",
                    f"add {name}: {field_spec.doc}",
                    key=True,
                )
            continue
        value = _field(source, (*path, name), field_spec.type, body[name])
        if value is not MISSING:
            step.fields[name] = value
            step.field_where[name] = source.where((*path, name))
    _check_one_of(source, path, spec, body)
    if kind == "ask":
        _check_answer_settings(source, path, step)
    return step


def _check_one_of(source: Source, path: PathKey, spec: KindSpec, body: dict[str, Any]) -> None:
    if spec.one_of and sum(name in body for name in spec.one_of) != 1:
        source.problem(path, f"give exactly one of: {', '.join(spec.one_of)}")


def _check_answer_settings(source: Source, path: PathKey, step: Step) -> None:
    for i, name in enumerate(step.get("normalize", ())):
        if name not in NORMALIZERS:
            source.problem(
                (*path, "normalize", i), f"unknown normalizer '{name}'", closest(name, NORMALIZERS)
            )
    rules = step.get("validate", {})
    for name, param in rules.items():
        where = (*path, "validate", name)
        if name not in RULES:
            source.problem(
                where, f"unknown validation rule '{name}'", closest(name, RULES), key=True
            )
        elif not _param_ok(RULES[name].param, param):
            source.problem(
                where,
                f"'{param}' is not a valid value for {name}",
                f"{name} expects {PARAM_WORDS[RULES[name].param]}",
            )


def _param_ok(kind: str, value: Any) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "regex":
        return _compiles(value)
    return isinstance(value, bool | str)


def _compiles(pattern: Any) -> bool:
    import re

    try:
        re.compile(pattern)
    except (re.error, TypeError):
        return False
    return True
