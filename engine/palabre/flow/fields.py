"""The types a flow field may have: each parses a YAML value and describes its JSON Schema.

Parsing never raises: a wrong value is recorded as a located problem on the Source and
the field is left out, so one run of `palabre check` reports every mistake at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from palabre.flow.model import Case, Choice, Text
from palabre.flow.source import PathKey, Source
from palabre.i18n.plurals import CATEGORIES
from palabre.purposes import PURPOSES

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
PLURAL_KEYS = {*CATEGORIES, "count"}

Parser = Callable[[Source, PathKey, Any], Any]
_MISSING = object()


@dataclass(frozen=True)
class FieldType:
    """A field type: a parser and the JSON Schema fragment editors use to autocomplete."""

    name: str
    parse: Parser
    schema: dict[str, Any]


def _expect(source: Source, path: PathKey, value: Any, kind: type, label: str) -> Any:
    is_bool = isinstance(value, bool)
    if is_bool if kind is bool else isinstance(value, kind) and not is_bool:
        return value
    source.problem(path, f"expected {label}, got {_describe(value)}")
    return _MISSING


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    names = {dict: "a mapping", list: "a list", bool: "true/false"}
    return names.get(type(value), f"'{value}'")


def parse_text(source: Source, path: PathKey, value: Any) -> Any:
    where = source.where(path)
    if isinstance(value, str):
        return Text(value, where=where)
    if _is_plural(value):
        forms = tuple((c, str(value[c])) for c in CATEGORIES if c in value)
        one = str(value.get("one", value["other"]))
        return Text(one, str(value["other"]), str(value["count"]), where=where, forms=forms)
    source.problem(
        path,
        f"expected a text, got {_describe(value)}",
        "write a text, or {one: ..., other: ..., count: <expression>} for plurals "
        f"(plural keys: {', '.join(CATEGORIES)})",
    )
    return _MISSING


def _is_plural(value: Any) -> bool:
    """A mapping of CLDR categories to texts, with `other` and `count` at least."""
    return (
        isinstance(value, dict)
        and {"other", "count"} <= set(value) <= PLURAL_KEYS
        and all(isinstance(v, str) for v in value.values())
    )


def parse_name(source: Source, path: PathKey, value: Any) -> Any:
    if isinstance(value, str) and NAME.match(value):
        return value
    source.problem(
        path, f"'{value}' is not a valid name", "use letters, digits and _, starting with a letter"
    )
    return _MISSING


def parse_str(source: Source, path: PathKey, value: Any) -> Any:
    return _expect(source, path, value, str, "a text")


def parse_purpose(source: Source, path: PathKey, value: Any) -> Any:
    if value in PURPOSES:
        return value
    from palabre.flow.suggest import closest

    hint = closest(str(value), PURPOSES) or f"write one of: {', '.join(PURPOSES)}"
    source.problem(path, f"unknown consent purpose {_describe(value)}", hint)
    return _MISSING


def parse_int(source: Source, path: PathKey, value: Any) -> Any:
    parsed = _expect(source, path, value, int, "a whole number")
    if parsed is not _MISSING and parsed < 0:
        source.problem(path, f"expected a number of 0 or more, got {parsed}")
        return _MISSING
    return parsed


def parse_bool(source: Source, path: PathKey, value: Any) -> Any:
    return _expect(source, path, value, bool, "true or false")


def parse_duration(source: Source, path: PathKey, value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = DURATION.match(value) if isinstance(value, str) else None
    if match:
        return int(match[1]) * UNITS[match[2]]
    source.problem(path, f"'{value}' is not a duration", "write e.g. 30m, 12h or 3d")
    return _MISSING


def parse_words(source: Source, path: PathKey, value: Any) -> Any:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
        return tuple(str(v) for v in value)
    source.problem(path, f"expected a list of words, got {_describe(value)}")
    return _MISSING


def parse_templates(source: Source, path: PathKey, value: Any) -> Any:
    if not isinstance(value, dict):
        source.problem(path, f"expected a mapping of names to values, got {_describe(value)}")
        return _MISSING
    result = {}
    for key, item in value.items():
        if parse_name(source, (*path, key), key) is not _MISSING:
            result[key] = item
    return result


def parse_choices(source: Source, path: PathKey, value: Any) -> Any:
    if not isinstance(value, list) or not value:
        source.problem(
            path,
            f"expected a list of choices, got {_describe(value)}",
            "write - {id: yes, title: Yes}",
        )
        return _MISSING
    choices = []
    for i, item in enumerate(value):
        here = (*path, i)
        if not isinstance(item, dict) or "id" not in item or "title" not in item:
            source.problem(here, "a choice needs an id and a title", "write - {id: 1, title: Man}")
            continue
        _unknown_keys(source, here, item, {"id", "title", "aliases"})
        title = parse_text(source, (*here, "title"), item["title"])
        aliases = parse_words(source, (*here, "aliases"), item.get("aliases", []))
        if title is not _MISSING and aliases is not _MISSING:
            choices.append(Choice(str(item["id"]), title, aliases))
    _duplicate_ids(source, path, value)
    return choices


def _duplicate_ids(source: Source, path: PathKey, items: list[Any]) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        ident = str(item.get("id")) if isinstance(item, dict) else None
        if ident in seen:
            source.problem((*path, i, "id"), f"duplicate choice id '{ident}'")
        if ident is not None:
            seen.add(ident)


def parse_cases(source: Source, path: PathKey, value: Any) -> Any:
    if not isinstance(value, list) or not value:
        source.problem(path, "expected a list of cases", "write - {when: 'age > 18', next: adult}")
        return _MISSING
    cases = []
    for i, item in enumerate(value):
        here = (*path, i)
        if not isinstance(item, dict) or not {"when", "next"} <= set(item):
            source.problem(here, "a case needs `when` and `next`")
            continue
        _unknown_keys(source, here, item, {"when", "next"})
        cases.append(Case(str(item["when"]), str(item["next"]), source.where(here)))
    return cases


def parse_mapping(source: Source, path: PathKey, value: Any) -> Any:
    return _expect(source, path, value, dict, "a mapping")


def _unknown_keys(source: Source, path: PathKey, item: dict[str, Any], known: set[str]) -> None:
    from palabre.flow.suggest import closest

    for key in item:
        if key not in known:
            source.problem((*path, key), f"unknown key '{key}'", closest(key, known), key=True)


MISSING = _MISSING
_TEXT_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {"type": "string"},
        {
            "type": "object",
            "description": "a plural text: one form per CLDR category, chosen by `count`",
            "required": ["other", "count"],
            "additionalProperties": False,
            "properties": {
                **{k: {"type": "string"} for k in CATEGORIES},
                "count": {"type": "string", "description": "the number, a Jinja expression"},
            },
        },
    ]
}
_WORDS = {
    "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": ["string", "integer"]}}]
}

TYPES = {
    "text": FieldType("text", parse_text, _TEXT_SCHEMA),
    "step": FieldType("step", parse_name, {"type": "string", "pattern": NAME.pattern}),
    "name": FieldType("name", parse_name, {"type": "string", "pattern": NAME.pattern}),
    "str": FieldType("str", parse_str, {"type": "string"}),
    "purpose": FieldType("purpose", parse_purpose, {"enum": list(PURPOSES)}),
    "int": FieldType("int", parse_int, {"type": "integer", "minimum": 0}),
    "bool": FieldType("bool", parse_bool, {"type": "boolean"}),
    "duration": FieldType(
        "duration", parse_duration, {"type": ["string", "integer"], "pattern": DURATION.pattern}
    ),
    "words": FieldType("words", parse_words, _WORDS),
    "templates": FieldType("templates", parse_templates, {"type": "object"}),
    "mapping": FieldType("mapping", parse_mapping, {"type": "object"}),
    "choices": FieldType(
        "choices",
        parse_choices,
        {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "title"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": ["string", "integer"]},
                    "title": _TEXT_SCHEMA,
                    "aliases": _WORDS,
                },
            },
        },
    ),
    "cases": FieldType(
        "cases",
        parse_cases,
        {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["when", "next"],
                "additionalProperties": False,
                "properties": {"when": {"type": "string"}, "next": {"type": "string"}},
            },
        },
    ),
}
