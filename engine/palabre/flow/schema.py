"""The JSON Schema of the flow format, generated from the same tables the loader uses.

`palabre schema > flows/flow.schema.json`; flows reference it in their first line
(`# yaml-language-server: $schema=flow.schema.json`) so that VS Code's YAML extension
autocompletes keys and underlines mistakes while a flow is being written.
"""

from __future__ import annotations

from typing import Any

from palabre.flow.answers import NORMALIZERS, RULES
from palabre.flow.fields import TYPES
from palabre.flow.kinds import COMMON, KINDS, KindSpec
from palabre.flow.loader import SETTINGS_TYPES, SUPPORTED_LOCALES

SCHEMA_ID = "https://palabre.dev/schema/flow.schema.json"
_RULE_TYPES = {
    "bool": "boolean",
    "int": "integer",
    "number": "number",
    "regex": "string",
    "date": ["boolean", "string"],
}


def _field(type_name: str, doc: str) -> dict[str, Any]:
    return {**TYPES[type_name].schema, "description": doc}


def _step(kind: str, spec: KindSpec) -> dict[str, Any]:
    properties: dict[str, Any] = {"kind": {"const": kind, "description": spec.doc}}
    for name, field in spec.fields.items():
        properties[name] = _field(field.type, field.doc)
    if kind == "ask":
        properties["normalize"]["items"] = {"enum": sorted(NORMALIZERS)}
        properties["validate"] = {
            "type": "object",
            "additionalProperties": False,
            "properties": {n: {"type": _RULE_TYPES[r.param]} for n, r in RULES.items()},
        }
    required = ["kind"] + [n for n, f in spec.fields.items() if f.required]
    schema: dict[str, Any] = {
        "type": "object",
        "description": spec.doc,
        "required": required,
        "additionalProperties": False,
        "properties": properties,
    }
    if spec.one_of:
        schema["oneOf"] = [{"required": [name]} for name in spec.one_of]
    return schema


def flow_schema() -> dict[str, Any]:
    """The schema, as a JSON-serialisable dict."""
    locale = {"enum": list(SUPPORTED_LOCALES)}
    settings = {name: _field(type_name, name) for name, type_name in SETTINGS_TYPES.items()}
    for name in ("default_locale", "source_locale"):
        settings[name] = {**settings[name], **locale}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Palabre flow",
        "type": "object",
        "required": ["id", "steps"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "pattern": TYPES["name"].schema["pattern"]},
            "title": {"type": "string"},
            "triggers": {
                "type": "object",
                "description": (
                    "keywords that start this flow, per locale; default: true; "
                    "event: the outside events (POST /api/v1/events) that start it; "
                    "purpose: the consent their messages need (service, or broadcast)"
                ),
                "properties": {
                    "default": {"type": "boolean"},
                    "event": TYPES["words"].schema,
                    "purpose": {"enum": ["service", "broadcast"]},
                },
                "additionalProperties": TYPES["words"].schema,
                "propertyNames": {"enum": ["default", "event", "purpose", *SUPPORTED_LOCALES]},
            },
            "settings": {"type": "object", "properties": settings},
            "steps": {
                "type": "object",
                "description": "steps by name, run in file order unless `next` says otherwise",
                "additionalProperties": {"$ref": "#/$defs/step"},
            },
        },
        "$defs": {
            "step": {
                "type": "object",
                "required": list(COMMON),
                "properties": {"kind": {"enum": list(KINDS)}},
                "oneOf": [{"$ref": f"#/$defs/{kind}"} for kind in KINDS],
            },
            **{kind: _step(kind, spec) for kind, spec in KINDS.items()},
        },
    }
