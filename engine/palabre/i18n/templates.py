"""Compiling and rendering every message template, within bounds.

Templates come from flow authors, so they run in Jinja's immutable sandbox, bounded
(palabre.i18n.sandbox): no access to Python internals, no mutation of the session's values,
and no render may loop, recurse, grow or take time past the limits of palabre.i18n.bounds.
Output is plain text for SMS and WhatsApp, so nothing is HTML-escaped. An undefined variable
is an error, never "". Whatever goes wrong in a render is a TemplateError naming the template,
and its message holds no runtime data: a name is quoted only when the template itself says it.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, TypeVar

import jinja2
import jinja2.meta
from jinja2 import nodes
from jinja2.parser import Parser

from palabre.errors import TemplateError
from palabre.i18n.bounds import BoundExceeded, Limits, budget
from palabre.i18n.sandbox import BoundedSandbox

T = TypeVar("T")

# What a parse may raise besides a syntax error: a 5,000-digit number literal, deep nesting.
PARSE_FAILURES = (jinja2.TemplateSyntaxError, ValueError, RecursionError)


class Templates:
    """Compiles and renders templates, caching each compiled source once."""

    def __init__(
        self, filters: Mapping[str, Callable[..., Any]] | None = None, limits: Limits | None = None
    ) -> None:
        self.env = BoundedSandbox(filters)
        self.limits = limits or Limits()
        self._compile = lru_cache(maxsize=4096)(self._template)
        self._expression = lru_cache(maxsize=1024)(self.env.compile_expression)

    def render(self, source: str, variables: Mapping[str, Any], *, where: str) -> str:
        """Render `source`; any failure is a TemplateError naming `where` and the cause."""
        template = self._compiled(self._compile, source, where)
        if isinstance(template, str):
            return template
        try:  # plain try blocks, not context managers: this runs for most messages
            with budget(self.limits):
                return template.render(variables)
        except Exception as exc:
            raise _failure_of(exc, where, source) from None

    def _template(self, source: str) -> jinja2.Template | str:
        """The compiled template, or its text when it is only text (most texts and every
        plain choice): that needs no sandbox, no budget and no render."""
        tree = self.env.parse(source)
        text = constant_text(tree)
        if text is not None and len(text) <= self.limits.output:
            return text
        return self.env.from_string(tree)

    def evaluate(self, expression: str, variables: Mapping[str, Any], *, where: str) -> Any:
        """Evaluate a Jinja expression such as `reg.new and age > 18`."""
        compiled = self._compiled(self._expression, expression, where)
        try:
            with budget(self.limits):
                result = compiled(**variables)
        except Exception as exc:
            raise _failure_of(exc, where, expression) from None
        if isinstance(result, jinja2.Undefined):
            raise TemplateError(f"{where}: '{expression}' is undefined")
        return result

    def _compiled(self, compile: Callable[[str], T], source: str, where: str) -> T:
        """Compile once (cached), outside the render's time budget: a first render on a busy
        machine must not fail for the time compiling took. Constant folding at compile time
        still goes through the sandbox's size guards."""
        try:
            return compile(source)
        except Exception as exc:
            raise _failure_of(exc, where, source) from None

    def parse(self, source: str, *, expression: bool = False) -> nodes.Template:
        """The template (or the one expression) as written, unbounded; raises PARSE_FAILURES."""
        if not expression:
            return self.env.parse(source)
        parser = Parser(self.env, source, state="variable")  # as compile_expression reads it
        body = parser.parse_expression()
        if not parser.stream.eos:
            raise jinja2.TemplateSyntaxError(
                "chunk after expression", parser.stream.current.lineno, None, None
            )
        return nodes.Template([nodes.Output([body])], lineno=1)

    def syntax_error(self, source: str, *, expression: bool = False) -> str | None:
        """The syntax error in `source`, or None when it compiles."""
        try:
            with budget(self.limits):  # compiling folds constants, so it runs within bounds
                self._expression(source) if expression else self.env.parse(source)
        except jinja2.TemplateSyntaxError as exc:
            return f"line {exc.lineno} of the template: {exc.message}"
        except (ValueError, RecursionError) as exc:
            return f"the template cannot be read: {_failure(exc)}"
        return None

    def variables(self, source: str, *, expression: bool = False) -> set[str]:
        """Names a template (or an expression) reads but does not define itself."""
        text = "{{ " + source + " }}" if expression else source
        try:
            return set(jinja2.meta.find_undeclared_variables(self.env.parse(text)))
        except PARSE_FAILURES:
            return set()


def _failure_of(exc: Exception, where: str, source: str) -> TemplateError:
    """The TemplateError a compile or render failure becomes, naming `where`."""
    if isinstance(exc, BoundExceeded):
        return TemplateError(f"{where}: stopped: {exc.message}")
    if isinstance(exc, jinja2.TemplateError):
        return TemplateError(f"{where}: {_reason(exc, source)}")
    return TemplateError(f"{where}: {_failure(exc)}")  # its own arithmetic or recursion failed


def constant_text(tree: nodes.Template) -> str | None:
    """What a template renders when it is only text (its raw blocks too), else None."""
    if not tree.body:
        return ""
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return None
    data = [node for node in tree.body[0].nodes if isinstance(node, nodes.TemplateData)]
    if len(data) != len(tree.body[0].nodes):
        return None
    return "".join(node.data for node in data)


# A quoted name in Jinja's messages, and Jinja's way of naming a type ('dict object').
_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")
_TYPE_NAME = re.compile(r"\w+ object")


def _reason(exc: jinja2.TemplateError, source: str) -> str:
    """Jinja's message when all it quotes is written in `source`; else only what went wrong:
    a key looked up with the contact's answer (`names[city]`) would put the answer in logs."""
    message = exc.message or ""
    if not _only_quotes_from(message, source):
        what = (
            "undefined variable or attribute"
            if isinstance(exc, jinja2.UndefinedError)
            else (f"{type(exc).__name__} while rendering")
        )
        return f"{what}{_line(exc)}"
    if isinstance(exc, jinja2.UndefinedError):
        return f"undefined variable ({message})"
    return f"{type(exc).__name__}: {message}"


def _only_quotes_from(message: str, source: str) -> bool:
    """Whether every name and number `message` quotes is a type or written in `source`
    (Jinja quotes a string key, but not a number: `items[answer|int]`)."""
    rest = _QUOTED.sub("", message)
    if "'" in rest or '"' in rest:
        return False
    names = [quoted[1:-1] for quoted in _QUOTED.findall(message)] + re.findall(r"\d+", rest)
    return all(_TYPE_NAME.fullmatch(name) or _written(name, source) for name in names)


def _line(exc: BaseException) -> str:
    """Where in the template `exc` happened: Jinja puts the template's lines in the traceback."""
    lines = [n for frame, n in traceback.walk_tb(exc.__traceback__) if _in_template(frame)]
    return f" on line {lines[-1]} of the template" if lines else ""


def _in_template(frame: Any) -> bool:
    return frame.f_code.co_filename == "<template>"


def _written(name: str, source: str) -> bool:
    return not name or re.search(rf"(?<!\w){re.escape(name)}(?!\w)", source) is not None


def _failure(exc: Exception) -> str:
    """The cause, by type only: a Python error's text may quote the contact's answers."""
    if isinstance(exc, RecursionError):
        return "the template nests or recurses too deeply"
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        return "a number has too many digits"
    return f"{type(exc).__name__} while rendering"
