"""Gettext catalogs, one PO file per language, read with babel.

Layout: `locales/<lang>/LC_MESSAGES/messages.po`. The PO files are the source of truth
that translators edit (Poedit, Weblate); they are read directly, so a fresh edit takes
effect without a compile step. `palabre i18n compile` still writes the .mo files for
tools that want them. Fuzzy and empty translations fall back to the source text.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

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

    def ngettext(self, locale: str, singular: str, plural: str, count: int) -> str:
        return self.translations(locale).ngettext(singular, plural, count)

    def is_translated(self, locale: str, msgid: str) -> bool:
        """True when `locale` has a non-fuzzy, non-empty translation of `msgid`."""
        catalog = self.catalog(locale)
        message = catalog.get(msgid) if catalog else None
        if message is None or message.fuzzy:
            return False
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        return all(strings)


def _to_translations(catalog: Catalog) -> Translations:
    buffer = BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)
