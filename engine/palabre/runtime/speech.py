"""Turning a flow's texts into the contact's language: translate, then render."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from palabre.errors import TemplateError
from palabre.flow.model import Choice, Text
from palabre.i18n.catalogs import Catalogs
from palabre.i18n.plurals import category
from palabre.i18n.templates import Templates
from palabre.runtime.messages import Option


class Speech:
    """Translates and renders texts for one language.

    `source_locale` is the language flow texts are written in (the catalogs' msgids): an
    untranslated plural text picks its source form by that language's plural rule.
    """

    def __init__(self, catalogs: Catalogs, templates: Templates, source_locale: str = "en") -> None:
        self.catalogs = catalogs
        self.templates = templates
        self.source_locale = source_locale

    def say(self, text: Text, lang: str, variables: Mapping[str, Any], where: str) -> str:
        """The text in `lang`, rendered with `variables`; plural forms chosen by babel's rules."""
        if text.plural and text.count:
            count = self.templates.evaluate(text.count, variables, where=f"{where}.count")
            source = self._plural(text, lang, count, f"{where}.count")
        else:
            source = self.catalogs.gettext(lang, text.msgid)
        return self.templates.render(source, variables, where=where).strip()

    def _plural(self, text: Text, lang: str, count: Any, where: str) -> str:
        """`lang`'s form for `count`; untranslated, the source form for `count`."""
        forms = dict(text.forms) or {"one": text.msgid, "other": text.plural or text.msgid}
        try:
            translated = self.catalogs.plural(lang, text.msgid, count)
            return translated or forms.get(category(self.source_locale, count), forms["other"])
        except ValueError as exc:
            raise TemplateError(f"{where}: {exc}") from None

    def plain(self, msgid: str, lang: str) -> str:
        """One of the engine's own texts, translated."""
        return self.catalogs.gettext(lang, msgid)

    def options(
        self, choices: list[Choice], lang: str, variables: Mapping[str, Any], where: str
    ) -> tuple[Option, ...]:
        return tuple(
            Option(choice.id, self.say(choice.title, lang, variables, f"{where}[{i}].title"))
            for i, choice in enumerate(choices)
        )

    def titles_everywhere(self, choice: Choice, languages: tuple[str, ...]) -> set[str]:
        """A choice's title in every language (untranslated source included), for matching."""
        titles = {choice.title.msgid, *choice.aliases}
        titles |= {self.catalogs.gettext(lang, choice.title.msgid) for lang in languages}
        return titles
