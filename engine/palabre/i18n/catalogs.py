"""Gettext catalogs, one PO file per language, read with babel.

Layout: `locales/<lang>/LC_MESSAGES/messages.po`. The PO files are the source of truth
that translators edit (Poedit, Weblate); they are read directly, so a fresh edit takes
effect without a compile step. `palabre i18n compile` still writes the .mo files for
tools that want them. Fuzzy and empty translations fall back to the source text; an empty
plural form falls back to the same language's `other` form.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from palabre.i18n.plurals import catalog_layout, category

DOMAIN = "messages"


def po_path(directory: Path, locale: str) -> Path:
    return directory / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(path: Path, locale: str) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=locale, domain=DOMAIN)


class Catalogs:
    """Translations for each language found under a locales directory."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._catalogs: dict[str, Catalog] = {}
        self._translations: dict[str, NullTranslations] = {}

    def catalog(self, locale: str) -> Catalog | None:
        """The parsed PO catalog of `locale`, or None when there is none."""
        if locale not in self._catalogs:
            path = po_path(self.directory, locale) if self.directory else None
            if path is None or not path.exists():
                return None
            self._catalogs[locale] = read_catalog(path, locale)
        return self._catalogs[locale]

    def translations(self, locale: str) -> NullTranslations:
        if locale not in self._translations:
            catalog = self.catalog(locale)
            self._translations[locale] = (
                _to_translations(catalog) if catalog else (NullTranslations())
            )
        return self._translations[locale]

    def gettext(self, locale: str, msgid: str) -> str:
        return self.translations(locale).gettext(msgid)

    def plural(self, locale: str, msgid: str, count: Any) -> str | None:
        """The `locale` form of the plural text `msgid` for `count`, or None if untranslated.

        The form is the msgstr holding `count`'s CLDR category in `locale`; when that one
        is empty, the locale's `other` form (never the source language's).
        """
        catalog, strings = self._translated(locale, msgid)
        if catalog is None:
            return None
        found = catalog_layout(catalog, locale)
        for index in (found.index(category(locale, count)), found.index("other")):
            if index < len(strings) and strings[index]:
                return strings[index]
        return None

    def empty_plural_forms(self, locale: str, msgid: str) -> list[str]:
        """Each empty form of a translated plural `msgid`, and what is said instead."""
        catalog, strings = self._translated(locale, msgid)
        if catalog is None or len(strings) < 2:
            return []
        found = catalog_layout(catalog, locale)
        other = found.index("other")
        has_other = other < len(strings) and bool(strings[other])
        return [
            f"the {'/'.join(f'`{c}`' for c in found.categories(i))} form (msgstr[{i}]): "
            f"{'its `other` form' if has_other else 'the source text'} is sent instead"
            for i in range(found.nplurals)
            if found.categories(i) and not (i < len(strings) and strings[i])
        ]

    def is_translated(self, locale: str, msgid: str) -> bool:
        """True when `locale` has a non-fuzzy translation of `msgid` (one plural form is enough)."""
        return self._translated(locale, msgid)[0] is not None

    def _translated(self, locale: str, msgid: str) -> tuple[Catalog | None, tuple[str, ...]]:
        catalog = self.catalog(locale)
        message = catalog.get(msgid) if catalog else None
        if message is None or message.fuzzy:
            return None, ()
        raw = message.string
        strings = tuple(raw) if isinstance(raw, list | tuple) else (raw or "",)
        return (catalog, strings) if any(strings) else (None, ())


def _to_translations(catalog: Catalog) -> Translations:
    buffer = BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)
