"""Read YAML into plain Python values while remembering where each value came from.

PyYAML's composer keeps a mark (line, column) on every node; we walk the node tree
once, build ordinary dicts, lists and scalars, and record the position of every value
and every mapping key under its path, so that any later check can say `file:line:column`.
Duplicate mapping keys, which PyYAML would silently overwrite, are reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from palabre.errors import Problem

PathKey = tuple[str | int, ...]


@dataclass
class Source:
    """A parsed YAML document: its data, and where each path was written."""

    file: str
    data: Any
    positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def where(self, path: PathKey, *, key: bool = False) -> tuple[int, int]:
        """The (line, column) of `path`, or of its closest parent that has one."""
        table = self.key_positions if key else self.positions
        while path:
            if path in table:
                return table[path]
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.positions.get((), (1, 1))

    def problem(
        self,
        path: PathKey,
        message: str,
        hint: str = "",
        *,
        key: bool = False,
        at: tuple[int, int] | None = None,
    ) -> None:
        """Record a problem at `path` (at its key with key=True, or at an explicit mark)."""
        line, column = at or self.where(path, key=key)
        self.problems.append(Problem(self.file, line, column, dotted(path), message, hint))


def dotted(path: PathKey) -> str:
    """`("steps", "city", "next")` → `steps.city.next`; list indexes as `[0]`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def read_source(path: str | Path) -> Source:
    """Parse a YAML file. Syntax errors become problems; this never raises on bad YAML."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        source = Source(name, None)
        source.problems.append(Problem(name, 1, 1, "", f"cannot read file: {exc}"))
        return source
    return parse_source(text, name)


def parse_source(text: str, name: str = "<string>") -> Source:
    """Parse YAML text (see read_source)."""
    source = Source(name, None)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = exc.problem or "invalid YAML"
        hint = "check indentation, and quote texts that contain ': ' or start with '{' or '*'"
        source.problems.append(Problem(name, line, column, "", f"YAML syntax: {reason}", hint))
        return source
    except yaml.YAMLError as exc:
        source.problems.append(Problem(name, 1, 1, "", f"YAML: {exc}"))
        return source
    if node is not None:
        source.data = _convert(node, (), source)
    return source


def _convert(node: yaml.Node, path: PathKey, source: Source) -> Any:
    source.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        return _convert_mapping(node, path, source)
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), source) for i, item in enumerate(node.value)]
    try:
        return _scalar(node)
    except (yaml.YAMLError, ValueError, TypeError):
        source.problem(
            path,
            f"cannot read the value tagged {node.tag}",
            "remove the !!tag: flows hold plain texts, numbers and lists",
        )
        return None


def _convert_mapping(node: yaml.MappingNode, path: PathKey, source: Source) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = str(_scalar(key_node))
        child = (*path, key)
        if key in result:
            first_line = source.key_positions[child][0]
            source.problem(
                child,
                f"duplicate '{key}' (first at line {first_line})",
                "each name may appear once here; rename or merge them",
                at=_mark(key_node),
            )
            continue
        source.key_positions[child] = _mark(key_node)
        result[key] = _convert(value_node, child, source)
    return result


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return f"<{type(node).__name__}>"
    loader = _Loader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


class _Loader(yaml.SafeLoader):
    """SafeLoader where only `true`/`false` are booleans: `no`, `yes`, `on` stay words."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
