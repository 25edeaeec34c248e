"""Size estimates made before an operation runs, for the few that can explode in one go.

Most operations make a result no bigger than their inputs, and `Budget.made` measures it
afterwards. These can make a result far bigger than their inputs at once (`'x' * n`,
`2 ** n`, a format width, `center(n)`, `replace`, `join`...), so they are refused before
they allocate anything. Each estimate is an upper bound, cheap to compute.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from typing import Any

from palabre.i18n.bounds import Budget, deep_size

Arguments = dict[str, Any]

# `%[(name)][flags][width][.precision]`: the width and precision may be `*` (taken from args).
_PERCENT = re.compile(r"%%|%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")
_SEQUENCES = (str, bytes, list, tuple)


def _number(digits: str) -> int:
    """The value of a run of digits, without converting a thousand-digit run."""
    return int(digits) if len(digits) <= 9 else 10**9


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _deep(budget: Budget, value: Any) -> int:
    """What `value` holds, however deeply (palabre.i18n.bounds.deep_size), up to the limit."""
    return deep_size(value, budget.limits.value, budget.on_time)


def binop(budget: Budget, operator: str, left: Any, right: Any) -> None:
    """Refuse `left <operator> right` when its result would be too big."""
    if operator == "*":
        if _is_int(left) and _is_int(right):
            budget.check_int_bits(left.bit_length() + right.bit_length())
        for sequence, times in ((left, right), (right, left)):
            if isinstance(sequence, _SEQUENCES) and _is_int(times):
                # `[a] * n` holds n references to `a`: what it holds is n times all of `a`.
                budget.check_size(_deep(budget, sequence) * max(times, 0))
    elif operator == "**" and _is_int(left) and _is_int(right):
        if abs(left) > 1 and right > 0:
            budget.check_int_bits(right * (abs(left).bit_length() - 1))
    elif operator == "+" and isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
        budget.check_size(_deep(budget, left) + _deep(budget, right))
    elif operator == "%" and isinstance(left, str):
        percent_format(budget, left, right if isinstance(right, tuple) else (right,))


def percent_format(budget: Budget, template: str, values: Any) -> None:
    """Refuse `template % values` when a width or precision is too big."""
    starred = False
    for match in _PERCENT.finditer(template):
        for group in match.groups():
            if group == "*":
                starred = True
            elif group:
                budget.check_size(_number(group), "a format width")
    if starred and isinstance(values, tuple):
        for value in values:
            if _is_int(value):
                budget.check_size(value, "a format width")


def brace_format(budget: Budget, template: str, args: Any, kwargs: Any) -> None:
    """Refuse `template.format(...)` when a width or precision is too big."""
    nested = False
    for _, _, spec, _ in string.Formatter().parse(template):
        if spec:
            nested = nested or "{" in spec
            for digits in _DIGITS.findall(spec):
                budget.check_size(_number(digits), "a format width")
    if nested:
        for value in (*args, *dict(kwargs).values()):
            if _is_int(value):
                budget.check_size(value, "a format width")


def _replaced(budget: Budget, text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if not isinstance(text, (str, bytes)) or not isinstance(old, type(text)):
        return
    times: int = text.count(old) if old else len(text) + 1  # type: ignore[arg-type]
    if _is_int(count) and count >= 0:
        times = min(times, count)
    if isinstance(new, (str, bytes)):
        budget.check_size(len(text) + times * max(len(new) - len(old), 0))


def _joined(budget: Budget, separator: Any, items: Any) -> list[Any]:
    """`items` as a list (so that it is read once), refused when the join would be too big."""
    listed = list(items)
    joints = len(str(separator)) * max(len(listed) - 1, 0)
    budget.check_size(joints + _deep(budget, listed))  # one walk, so it is bounded too
    return listed


def _translated(budget: Budget, text: str | bytes, table: Any) -> None:
    targets = table.values() if isinstance(table, dict) else table
    if isinstance(table, (dict, list, tuple)):
        longest = max((len(t) for t in targets if isinstance(t, (str, bytes))), default=1)
        budget.check_size(len(text) * max(longest, 1))


def method_call(budget: Budget, method: Any, args: tuple[Any, ...], kwargs: Any) -> tuple[Any, ...]:
    """Check a call of a `str`, `bytes` or `int` method; returns the arguments to call with."""
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, (str, bytes, int)) or isinstance(owner, bool):
        return args
    name = getattr(method, "__name__", "")
    for value in (*args, *kwargs.values()):
        if _is_int(value):  # widths, tab sizes and byte counts: each is a result size
            budget.check_size(value, f"an argument of {name}()")
    if not isinstance(owner, (str, bytes)):
        return args
    if name == "replace" and len(args) >= 2:
        _replaced(budget, owner, *args[:3])
    elif name == "join" and args:
        return (_joined(budget, owner, args[0]), *args[1:])
    elif name == "expandtabs":
        size = int((args or [kwargs.get("tabsize", 8)])[0])
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        budget.check_size(len(owner) + tabs * size)
    elif name == "translate" and args:
        _translated(budget, owner, args[0])
    return args


def _width(budget: Budget, a: Arguments, name: str) -> None:
    if _is_int(a.get(name)):
        budget.check_size(a[name], f"the {name} argument")


def _indent(budget: Budget, a: Arguments) -> None:
    text, width = str(a["s"]), a["width"]
    each = width if _is_int(width) else len(str(width))
    budget.check_size(len(text) + (text.count("\n") + 1) * max(each, 0))


def _wordwrap(budget: Budget, a: Arguments) -> None:
    _width(budget, a, "width")
    text, wrap = str(a["s"]), a["wrapstring"] or "\n"
    lines = len(text) // max(a["width"], 1) + text.count(" ") + text.count("\n") + 1
    budget.check_size(len(text) + lines * len(str(wrap)))


def _join(budget: Budget, a: Arguments) -> None:
    a["value"] = _joined(budget, a["d"], a["value"])


def _sum(budget: Budget, a: Arguments) -> None:
    """Adding up lists copies the total so far at each item: refuse the quadratic cases."""
    if _is_int(a["start"]) or isinstance(a["start"], float):
        return
    items = a["iterable"] = list(a["iterable"])
    total = sum(len(i) if isinstance(i, _SEQUENCES) else 1 for i in items)
    budget.check_size(len(items) * (len(a["start"]) + total) // 2, "the work of sum()")


def _tojson(budget: Budget, a: Arguments) -> None:
    if _is_int(a["indent"]):
        budget.check_size(_deep(budget, a["value"]) * (1 + max(a["indent"], 0)))


FILTER_ESTIMATES: dict[str, Callable[[Budget, Arguments], None]] = {
    "center": lambda budget, a: _width(budget, a, "width"),
    "indent": _indent,
    "wordwrap": _wordwrap,
    "replace": lambda budget, a: _replaced(
        budget, str(a["s"]), str(a["old"]), str(a["new"]), a["count"]
    ),
    "join": _join,
    "format": lambda budget, a: percent_format(budget, str(a["value"]), a["kwargs"] or a["args"]),
    "batch": lambda budget, a: _width(budget, a, "linecount"),
    "slice": lambda budget, a: _width(budget, a, "slices"),
    "sum": _sum,
    "tojson": _tojson,
}
"""Checks run before Jinja's own filter of that name, given its arguments by name."""
