"""The sandboxed Jinja environment every message template renders in.

Templates come from flow authors, so they run in Jinja's immutable sandbox: no access to
Python internals, no mutation of the session's values. Output is plain text for SMS and
WhatsApp, so nothing is HTML-escaped. An undefined variable is an error, never "".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import jinja2
import jinja2.meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from palabre.errors import TemplateError


class Templates:
    """Compiles and renders templates, caching each compiled source once."""

    def __init__(self, filters: Mapping[str, Callable[..., Any]] | None = None) -> None:
        self.env = ImmutableSandboxedEnvironment(
            autoescape=False, undefined=jinja2.StrictUndefined, keep_trailing_newline=False
        )
        self.env.filters.update(filters or {})
        self._compile = lru_cache(maxsize=4096)(self.env.from_string)
        self._expression = lru_cache(maxsize=1024)(self.env.compile_expression)

    def render(self, source: str, variables: Mapping[str, Any], *, where: str) -> str:
        """Render `source`; any failure is a TemplateError naming `where` and the cause."""
        try:
            return self._compile(source).render(variables)
        except jinja2.TemplateError as exc:
            raise TemplateError(f"{where}: {_reason(exc)}") from None

    def evaluate(self, expression: str, variables: Mapping[str, Any], *, where: str) -> Any:
        """Evaluate a Jinja expression such as `reg.new and age > 18`."""
        try:
            result = self._expression(expression)(**variables)
        except jinja2.TemplateError as exc:
            raise TemplateError(f"{where}: {_reason(exc)}") from None
        if isinstance(result, jinja2.Undefined):
            raise TemplateError(f"{where}: '{expression}' is undefined")
        return result

    def syntax_error(self, source: str, *, expression: bool = False) -> str | None:
        """The syntax error in `source`, or None when it compiles."""
        try:
            self._expression(source) if expression else self.env.parse(source)
        except jinja2.TemplateSyntaxError as exc:
            return f"line {exc.lineno} of the template: {exc.message}"
        return None

    def variables(self, source: str, *, expression: bool = False) -> set[str]:
        """Names a template (or an expression) reads but does not define itself."""
        text = "{{ " + source + " }}" if expression else source
        try:
            return set(jinja2.meta.find_undeclared_variables(self.env.parse(text)))
        except jinja2.TemplateSyntaxError:
            return set()


def _reason(exc: jinja2.TemplateError) -> str:
    if isinstance(exc, jinja2.UndefinedError):
        return f"undefined variable ({exc.message})"
    return f"{type(exc).__name__}: {exc.message}"
