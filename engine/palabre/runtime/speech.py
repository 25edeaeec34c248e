"""Turning a flow's texts into the contact's language: translate, then render."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from palabre.flow.model import Choice, Text
from palabre.i18n.catalogs import Catalogs
from palabre.i18n.templates import Templates
from palabre.runtime.messages import Option


class Speech:
    """Translates and renders texts for one language."""

    def __init__(self, catalogs: Catalogs, templates: Templates) -> None:
        self.catalogs = catalogs
        self.templates = templates

    def say(self, text: Text, lang: str, variables: Mapping[str, Any], where: str) -> str:
        """The text in `lang`, rendered with `variables`; plural forms chosen by babel's rules."""
        if text.plural and text.count:
            count = self.templates.evaluate(text.count, variables, where=f"{where}.count")
            source = self.catalogs.ngettext(lang, text.msgid, text.plural, int(count))
        else:
            source = self.catalogs.gettext(lang, text.msgid)
        return self.templates.render(source, variables, where=where).strip()

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
