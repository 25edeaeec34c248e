"""Jinja's immutable sandbox, bounded: a template can neither escape nor run away.

The sandbox already keeps templates from Python's internals. This environment also routes
everything that can take time or memory through the render's `Budget` (palabre.i18n.bounds):

- every `{% for %}` iterates through a counter (the parsed template is rewritten so);
- every call (macros, methods, `loop(...)`) is a step, and macros and recursive loops nest
  at most so deep;
- `*`, `**`, `+` and `%` are estimated before they run, and every value made (list and dict
  literals too) is measured deeply: `[a] * 1000` holds a thousand times all of `a`;
- every filter's arguments are measured before it runs, custom filters' numbers too;
- every value is measured before it is turned into text (`{{ }}`, `~`), since `str()` of a
  small list of references to one long list is one long uninterruptible operation;
- `range()` is capped, `lipsum()` is gone, and the output is capped while it streams.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.filters import FILTERS
from jinja2.runtime import Context, LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from palabre.i18n import guards
from palabre.i18n.bounds import BoundExceeded, Budget, current

LOOP = "_palabre_loop"  # wraps every loop's iterable
SIZED = "_palabre_sized"  # measures every `~` concatenation and every list or dict literal
TEXT = "_palabre_text"  # measures every operand of `~` before it is turned into text


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The environment every flow template compiles in; see the module docstring."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, filters: Mapping[str, Callable[..., Any]] | None = None) -> None:
        super().__init__(
            autoescape=False,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=False,
            finalize=_printable,  # every `{{ }}` value, before it is turned into text
        )
        self.filters.update(filters or {})
        self.filters = {
            name: _guarded(name, function, function is FILTERS.get(name))
            for name, function in self.filters.items()
        }
        self.filters[LOOP] = _counted
        self.filters[SIZED] = _measured
        self.filters[TEXT] = _textable
        self.globals["range"] = bounded_range
        self.globals.pop("lipsum", None)  # makes pages of text from one small number

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """A template's globals as one plain dict, not Jinja's ChainMap: every render copies
        them into its context, and walking a ChainMap cost more than the render itself.
        The environment's globals are set once, above, before any template is compiled."""
        return {**self.globals, **(d or {})}

    def concat(self, pieces: Iterable[str]) -> str:
        """Jinja joins every output (the template's, a macro's, a block's) through this."""
        return current().concat(pieces)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """`left <operator> right`, refused when its result would be too big."""
        budget = current()
        guards.binop(budget, operator, left, right)
        try:
            result = self.binop_table[operator](left, right)
        except OverflowError:
            raise BoundExceeded("a number is too large") from None
        return budget.made(result)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Every call in a template: a step; a macro or `loop(...)` is one level deeper."""
        budget = current()
        budget.step()
        if isinstance(obj, LoopContext) and args:  # `loop(children)` in a recursive loop
            args = (budget.counted(args[0]), *args[1:])
        args = guards.method_call(budget, obj, args, kwargs)
        deeper = isinstance(obj, (Macro, LoopContext))
        with budget.nested() if deeper else contextlib.nullcontext():
            return budget.made(super().call(context, obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """`str.format` as the sandbox allows it, refused when a width is too big."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        template, is_map = value.__self__, value.__name__ == "format_map"

        @functools.wraps(wrapped)
        def checked(*args: Any, **kwargs: Any) -> str:
            if is_map:
                mapping = args[0] if args and isinstance(args[0], Mapping) else {}
                guards.brace_format(current(), template, (), mapping)
            else:
                guards.brace_format(current(), template, args, kwargs)
            return current().made(wrapped(*args, **kwargs))

        return checked

    def _generate(
        self,
        source: nodes.Template,
        name: str | None,
        filename: str | None,
        defer_init: bool = False,
    ) -> str:
        """Compile `source` after routing its loops and `~` through the budget."""
        source = _Bounded().visit(source)
        source.set_environment(self)
        return super()._generate(source, name, filename, defer_init)


class _Bounded(NodeTransformer):
    """Rewrites a parsed template: loop iterables are counted; `~` operands, `~` results and
    literals measured."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        if not (isinstance(node.iter, nodes.Filter) and node.iter.name == LOOP):
            node.iter = nodes.Filter(node.iter, LOOP, [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [_filtered(operand, TEXT) for operand in node.nodes]
        return _filtered(node, SIZED)

    def visit_List(self, node: nodes.List) -> nodes.Node:
        self.generic_visit(node)
        return _filtered(node, SIZED)

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        self.generic_visit(node)
        return _filtered(node, SIZED)

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        self.generic_visit(node)
        return node if node.ctx != "load" else _filtered(node, SIZED)


def _filtered(node: nodes.Expr, name: str) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


def bounded_range(*args: int) -> range:
    """`range()` for templates: at most `Limits.range` numbers."""
    numbers = range(*args)
    try:
        size = len(numbers)
    except OverflowError:
        size = sys.maxsize
    limit = current().limits.range
    if size > limit:
        raise BoundExceeded(f"range() of {size} numbers is over the limit of {limit}")
    return numbers


def _counted(iterable: Iterable[Any]) -> Iterator[Any]:
    return current().counted(iterable)


def _measured(value: Any) -> Any:
    return current().made(value)


def _printable(value: Any) -> Any:
    return current().printable(value)


def _textable(value: Any) -> Any:
    current().check_value(value)  # so that `str()` of it is at most a few times as long
    return value


def _guarded(name: str, function: Callable[..., Any], builtin: bool) -> Callable[..., Any]:
    """`function` as a filter that counts a step, checks its arguments first (see `checks`),
    and measures its result."""
    check = checks(name, function, builtin)
    # Jinja's async-ready filters take an eval context that their signature does not show.
    hidden = int(_passes(function) and not _passes(inspect.unwrap(function)))

    @functools.wraps(function)  # keeps Jinja's pass_context / pass_environment marker
    def run(*args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.step()
        checked, kwargs = check(budget, args[hidden:], kwargs)
        return budget.made(function(*args[:hidden], *checked, **kwargs))

    run.checks = check  # type: ignore[attr-defined]  # `check` runs it on constants
    return run


Check = Callable[[Budget, tuple[Any, ...], dict[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]]


def checks(name: str, function: Callable[..., Any], builtin: bool) -> Check:
    """What runs before filter `name`, given its arguments (without Jinja's hidden first one):
    every argument is measured deeply, a custom filter's numbers are sizes (a width, a count)
    and Jinja's own filters that can grow their input are estimated. Returns the arguments
    to call with (an iterable is read once, into a list)."""
    estimate = guards.FILTER_ESTIMATES.get(name) if builtin else None
    signature = inspect.signature(function) if estimate else None

    def check(
        budget: Budget, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        for value in (*args, *kwargs.values()):
            budget.check_value(value, f"an argument of {name}")
        if not builtin:  # a custom filter's number, past the value itself, may be a size
            for value in (*args[1:], *kwargs.values()):
                if isinstance(value, int) and not isinstance(value, bool):
                    budget.check_size(value, f"an argument of {name}")
        if estimate is None or signature is None:
            return args, kwargs
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        estimate(budget, bound.arguments)
        return bound.args, bound.kwargs

    return check


def _passes(function: Callable[..., Any]) -> bool:
    """Whether Jinja calls `function` with a context, eval context or environment first."""
    return getattr(function, "jinja_pass_arg", None) is not None
