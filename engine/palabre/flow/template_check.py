"""What `check` can see in a parsed template before it ever runs.

Two kinds of findings, each with the template line it is on:
- names that would fail at run time: a filter or test that no one offers, written as a filter
  or given by name as a string (`map('upper')`, `select('odd')`, `selectattr('x', 'odd')`);
- runaways the bounds would stop (palabre.i18n.bounds): `range()`, arithmetic, `%` and
  `.format()`, string methods and filters on constants that are over a limit, nested loops
  whose known sizes multiply past the step budget, loops nested three deep, and macros that
  call themselves.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from jinja2 import Environment, nodes

from palabre.flow.suggest import did_you_mean
from palabre.i18n import guards
from palabre.i18n.bounds import BoundExceeded, Budget, Limits

DEEP_LOOPS = 3  # loops nested this deep are worth a second look even when their sizes are unknown

_OPERATORS: dict[type[nodes.BinExpr], tuple[str, Callable[[Any, Any], Any]]] = {
    nodes.Add: ("+", operator.add),
    nodes.Sub: ("-", operator.sub),
    nodes.Mul: ("*", operator.mul),
    nodes.Pow: ("**", operator.pow),
    nodes.Mod: ("%", operator.mod),
    nodes.FloorDiv: ("//", operator.floordiv),
    nodes.Div: ("/", operator.truediv),
}


@dataclass(frozen=True)
class Finding:
    """One thing seen in a template, on `line` of it."""

    line: int
    message: str
    hint: str = ""
    warn: bool = False


class _NotConstant(Exception):
    """The expression reads a variable, so only the run can tell its value."""


def template_findings(template: nodes.Template, env: Environment, limits: Limits) -> list[Finding]:
    """Every finding in a parsed template, in the order they are written."""
    found = unknown_names(template, env)
    found += constant_runaways(template, limits, env.filters)
    found += loop_runaways(template, limits)
    found += recursive_macros(template, limits)
    return sorted(found, key=lambda f: f.line)


# Filters that take the name of another filter (or test) as a string, and where it goes.
_NAMED_BY_STRING = {
    "map": ("filter", 0),
    "select": ("test", 0),
    "reject": ("test", 0),
    "selectattr": ("test", 1),
    "rejectattr": ("test", 1),
}


def unknown_names(template: nodes.Template, env: Environment) -> list[Finding]:
    """Filters and tests the environment does not have: each would fail when it runs."""
    known = {"filter": env.filters, "test": env.tests}
    written = [("filter", node.name, node) for node in template.find_all(nodes.Filter)] + [
        ("test", node.name, node) for node in template.find_all(nodes.Test)
    ]
    found = []
    for kind, name, node in written + _named_by_string(template):
        if name not in known[kind]:
            public = [other for other in known[kind] if not other.startswith("_")]
            hint = did_you_mean(name, public) or f"no {kind} of that name exists"
            found.append(Finding(node.lineno, f"unknown {kind} '{name}'", hint))
    return found


def _named_by_string(template: nodes.Template) -> list[tuple[str, str, nodes.Node]]:
    """(kind, name, node) for each filter or test named by a constant string argument."""
    named: list[tuple[str, str, nodes.Node]] = []
    for node in template.find_all(nodes.Filter):
        kind, position = _NAMED_BY_STRING.get(node.name, ("", -1))
        if 0 <= position < len(node.args):
            arg = node.args[position]
            if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
                named.append((kind, arg.value, node))
    return named


def constant_runaways(
    template: nodes.Template, limits: Limits, filters: Mapping[str, Callable[..., Any]]
) -> list[Finding]:
    """Arithmetic, literals, `range()`, string methods and filters on constants that are
    already over a limit."""
    found: list[Finding] = []
    _scan_constants(template, limits, filters, found)
    return found


def _scan_constants(
    node: nodes.Node, limits: Limits, filters: Mapping[str, Any], found: list[Finding]
) -> None:
    for child in node.iter_child_nodes():
        try:
            if _is_range_call(child):
                _range_size(child, limits)
            elif isinstance(child, (nodes.BinExpr, nodes.Const)):
                _constant(child, limits)  # `2 ** 10 ** 9` is one finding, not two
            elif isinstance(child, nodes.Call) and isinstance(child.node, nodes.Getattr):
                _method_call(child, child.node, limits)
            elif isinstance(child, nodes.Filter) and child.node is not None:
                _filter_call(child, limits, filters)
            else:
                _scan_constants(child, limits, filters, found)
        except _NotConstant:
            _scan_constants(child, limits, filters, found)
        except BoundExceeded as exc:
            found.append(Finding(child.lineno, f"this would stop the message: {exc.message}"))
        except (ArithmeticError, TypeError, ValueError):
            continue  # a plain arithmetic error: the run reports it, with its place


def _arguments(call: nodes.Call | nodes.Filter, limits: Limits) -> tuple[list[Any], dict]:
    """The constant arguments of a call or filter; raises _NotConstant when one is not."""
    if call.dyn_args is not None or call.dyn_kwargs is not None:
        raise _NotConstant
    args = [_constant(arg, limits) for arg in call.args]
    return args, {kwarg.key: _constant(kwarg.value, limits) for kwarg in call.kwargs}


def _method_call(call: nodes.Call, method: nodes.Getattr, limits: Limits) -> None:
    """`'...'.format(...)`, `'x'.ljust(n)`... on constants, checked as the run checks them."""
    owner = _constant(method.node, limits)
    if not isinstance(owner, (str, bytes, int)) or method.attr.startswith("_"):
        raise _NotConstant
    args, kwargs = _arguments(call, limits)
    budget = Budget(limits)
    if isinstance(owner, str) and method.attr == "format":
        guards.brace_format(budget, owner, args, kwargs)
    elif hasattr(owner, method.attr):
        guards.method_call(budget, getattr(owner, method.attr), tuple(args), kwargs)
    raise _NotConstant  # checked; its arguments may still hold more to see


def _filter_call(node: nodes.Filter, limits: Limits, filters: Mapping[str, Any]) -> None:
    """A filter on constants, checked as the run checks it before calling it."""
    checks = getattr(filters.get(node.name), "checks", None)
    if checks is None or node.node is None:
        raise _NotConstant
    args, kwargs = _arguments(node, limits)
    checks(Budget(limits), (_constant(node.node, limits), *args), kwargs)
    raise _NotConstant


def _is_range_call(node: nodes.Node) -> TypeGuard[nodes.Call]:
    return (
        isinstance(node, nodes.Call)
        and isinstance(node.node, nodes.Name)
        and node.node.name == "range"
        and not node.kwargs
        and node.dyn_args is None
    )


def _range_size(call: nodes.Call, limits: Limits) -> int:
    """How many numbers `range(<constants>)` gives; over the limit raises BoundExceeded."""
    args = [_constant(arg, limits) for arg in call.args]
    if not all(isinstance(a, int) for a in args):
        raise _NotConstant
    try:
        size = len(range(*args))
    except OverflowError:
        size = sys.maxsize
    if size > limits.range:
        raise BoundExceeded(f"range() of {size} numbers is over the limit of {limits.range}")
    return size


def _constant(node: nodes.Node, limits: Limits) -> Any:
    """The value of an expression made only of literals, computed within `limits`."""
    budget = Budget(limits)
    if isinstance(node, nodes.Const):
        return budget.made(node.value)
    if isinstance(node, nodes.List):
        return budget.made([_constant(item, limits) for item in node.items])
    if isinstance(node, nodes.Tuple):  # a tuple, as `'%*s' % (width, text)` needs
        return budget.made(tuple(_constant(item, limits) for item in node.items))
    if isinstance(node, nodes.Neg):
        return -_constant(node.node, limits)
    if isinstance(node, nodes.BinExpr) and type(node) in _OPERATORS:
        symbol, apply = _OPERATORS[type(node)]
        left, right = _constant(node.left, limits), _constant(node.right, limits)
        guards.binop(budget, symbol, left, right)
        return budget.made(apply(left, right))
    raise _NotConstant


def loop_runaways(template: nodes.Template, limits: Limits) -> list[Finding]:
    """Loops whose nesting multiplies past the step budget, or that nest deep."""
    found: list[Finding] = []
    _walk_loops(template, 1, 0, limits, found)
    return found


def _walk_loops(
    node: nodes.Node, runs: int | None, depth: int, limits: Limits, found: list[Finding]
) -> None:
    for child in node.iter_child_nodes():
        if not isinstance(child, nodes.For):
            _walk_loops(child, runs, depth, limits, found)
            continue
        size = _loop_size(child.iter)
        inner = None if runs is None or size is None else runs * size
        if inner is not None and inner > limits.steps and depth > 0:
            found.append(
                Finding(
                    child.lineno,
                    f"these nested loops run {inner} times, "
                    f"over the limit of {limits.steps} steps for one message",
                    "loop over fewer items",
                )
            )
            inner = None  # reported once, not again for each loop inside
        elif depth + 1 == DEEP_LOOPS:
            found.append(
                Finding(
                    child.lineno,
                    f"loops nested {DEEP_LOOPS} deep: a message stops after {limits.steps} steps",
                    "make sure the lists are short",
                    warn=True,
                )
            )
        _walk_loops(child, inner, depth + 1, limits, found)


def _loop_size(iterable: nodes.Node) -> int | None:
    try:
        if _is_range_call(iterable):
            return _range_size(iterable, Limits(range=sys.maxsize))
        value = _constant(iterable, Limits())
    except (_NotConstant, BoundExceeded, ArithmeticError, TypeError, ValueError):
        return None
    return len(value) if isinstance(value, (str, list)) else None


def recursive_macros(template: nodes.Template, limits: Limits) -> list[Finding]:
    """Macros that call themselves, directly or through others."""
    macros = {macro.name: macro for macro in template.find_all(nodes.Macro)}
    calls = {
        name: {
            call.node.name
            for call in macro.find_all(nodes.Call)
            if isinstance(call.node, nodes.Name) and call.node.name in macros
        }
        for name, macro in macros.items()
    }
    return [
        Finding(
            macro.lineno,
            f"macro '{name}' calls itself: a message stops after {limits.depth} nested calls",
            "make sure the calls end, or use a loop",
            warn=True,
        )
        for name, macro in macros.items()
        if name in _reachable(name, calls)
    ]


def _reachable(start: str, calls: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(calls[start])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += calls.get(name, set())
    return seen
