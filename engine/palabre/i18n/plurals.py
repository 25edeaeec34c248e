"""CLDR plural categories, and which `msgstr[n]` of a gettext catalog holds each one.

A flow writes a plural text by CLDR category (`one`, `few`, `many`, `other`...); babel says
which category a number falls in for a language (`Locale.plural_form`); a PO file keeps one
`msgstr[n]` per value of its `Plural-Forms` expression. The two are matched by evaluating
both on sample numbers, so a catalog written under an older CLDR (French with two forms)
and one written today (French with three) are both read correctly, and `palabre i18n
update` can move each translation to the index that holds its category now.
"""

from __future__ import annotations

import gettext
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.plurals import get_plural

CATEGORIES = ("zero", "one", "two", "few", "many", "other")
# Integers (all a gettext expression ever sees): every remainder mod 100 and mod 1000, and
# the large round numbers some languages treat apart (French `many`: 1 000 000).
SAMPLES = (*range(1001), *(10**k for k in range(4, 13)), *(m * 10**6 for m in range(2, 10)))

Number = int | float | Decimal


@dataclass(frozen=True)
class PluralLayout:
    """Which CLDR category each `msgstr[n]` of one locale's catalog holds."""

    nplurals: int
    holders: tuple[tuple[str, int], ...]  # (category, msgstr index), in CATEGORIES order

    def holder(self, category: str) -> int | None:
        """The index that holds `category`, or None when no integer falls in it."""
        return dict(self.holders).get(category)

    def index(self, category: str) -> int:
        """The index to read for `category`: its own, else `other`'s, else the last one."""
        found = self.holder(category)
        if found is None:
            found = self.holder("other")
        return self.nplurals - 1 if found is None else found

    def categories(self, index: int) -> tuple[str, ...]:
        """The categories `msgstr[index]` is read for (none for an unused index)."""
        return tuple(category for category, held in self.holders if held == index)


@lru_cache(maxsize=64)
def layout(locale: str, nplurals: int, expression: str) -> PluralLayout:
    """Match `locale`'s CLDR categories with the indices of a `Plural-Forms` expression."""
    try:
        pick = gettext.c2py(expression)
    except (ValueError, SyntaxError):
        # A broken header: read the catalog as babel would write it today.
        current = get_plural(locale)
        nplurals, pick = current.num_plurals, gettext.c2py(current.plural_expr)
    rule = _rule(locale)
    seen: defaultdict[str, Counter[int]] = defaultdict(Counter)
    for n in SAMPLES:
        index = pick(n)
        if 0 <= index < nplurals:
            seen[rule(n)][index] += 1
    holders = tuple(
        (category, seen[category].most_common(1)[0][0])
        for category in CATEGORIES
        if seen.get(category)
    )
    return PluralLayout(nplurals, holders)


def catalog_layout(catalog: Catalog, locale: str) -> PluralLayout:
    """The layout of `catalog`, read from its own `Plural-Forms` header."""
    return layout(locale, catalog.num_plurals, catalog.plural_expr)


def category(locale: str, count: Any) -> str:
    """The CLDR plural category of `count` in `locale`: 'one', 'few', 'many', 'other'..."""
    return str(_rule(locale)(as_number(count)))


@lru_cache(maxsize=64)
def _rule(locale: str) -> Any:
    return Locale.parse(locale).plural_form


def as_number(value: Any) -> Number:
    """`value` as a number babel's plural rules accept; "2" → 2. ValueError if it is none."""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return value
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"a plural count must be a number, got {type(value).__name__}") from None


def adopt_current_rule(catalog: Catalog, locale: str) -> None:
    """Give `catalog` babel's current `Plural-Forms`, moving every plural translation.

    Each new `msgstr[n]` takes the old form that held one of its categories; a category
    the old layout had no form for starts empty, for a translator to fill.
    """
    old = catalog_layout(catalog, locale)
    current = get_plural(locale)
    catalog.mime_headers = [("Plural-Forms", current.plural_forms)]
    new = catalog_layout(catalog, locale)
    if new == old:
        return
    for message in [*catalog, *catalog.obsolete.values()]:
        if message.pluralizable and isinstance(message.string, list | tuple):
            message.string = tuple(
                _moved(message.string, old, new.categories(i)) for i in range(new.nplurals)
            )


def _moved(strings: Sequence[str], old: PluralLayout, categories: tuple[str, ...]) -> str:
    for name in categories:
        index = old.holder(name)
        if index is not None and index < len(strings) and strings[index]:
            return strings[index]
    return ""


def source_forms(singular: str, plural: str, locale: str, catalog: Catalog) -> tuple[str, ...]:
    """The source texts laid out as `catalog`'s msgstrs: `one` gets the singular."""
    found = catalog_layout(catalog, locale)
    return tuple(
        singular if "one" in found.categories(i) else plural for i in range(found.nplurals)
    )
