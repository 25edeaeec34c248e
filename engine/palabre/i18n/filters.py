"""Template filters: locale-aware numbers and dates (babel), and `fit` for fixed widths."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import jinja2
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal


@jinja2.pass_context
def number(context: jinja2.runtime.Context, value: Any) -> str:
    """12345.5 → "12 345,5" in French, "12,345.5" in English."""
    return format_decimal(value, locale=context.get("locale", "en"))


@jinja2.pass_context
def date_filter(context: jinja2.runtime.Context, value: Any, form: str = "medium") -> str:
    """A date (or ISO text) in the contact's language: "21 nov. 2026"."""
    locale = context.get("locale", "en")
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return format_datetime(value, form, locale=locale)
    if isinstance(value, date):
        return format_date(value, form, locale=locale)
    raise TypeError(f"date expects a date, got {type(value).__name__}")


def fit(value: Any, width: int, fill: str = "X") -> str:
    """Cut or pad text to exactly `width` characters: fit("LI", 3) → "LIX"."""
    return str(value)[:width].ljust(width, fill)


FILTERS: dict[str, Callable[..., Any]] = {"number": number, "date": date_filter, "fit": fit}
