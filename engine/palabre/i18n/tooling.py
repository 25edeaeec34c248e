"""The work behind `palabre i18n extract|update|compile|stats`, done with babel's API.

    flows/*.yaml + engine N_() texts --extract--> locales/messages.pot
    messages.pot --update--> locales/<lang>/LC_MESSAGES/messages.po   (translators edit these)
    messages.po  --compile--> messages.mo beside it (fuzzy entries left out)

Flow texts are English Jinja templates used as msgids; a plural text is (msgid, msgid_plural),
its `one` and `other` forms, and each PO keeps one msgstr per plural form of its language.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import IO, Any

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po, write_po

from palabre.errors import PalabreError
from palabre.flow.loader import parse_flow
from palabre.flow.source import parse_source
from palabre.i18n.catalogs import DOMAIN, po_path, read_catalog
from palabre.i18n.plurals import adopt_current_rule, source_forms

PROJECT = "palabre"
PYTHON_KEYWORDS: dict[str, Any] = {"N_": None, "_": None}
# babel's own names, so extract_flow also works with babel's default keywords.
FLOW_KEYWORDS: dict[str, Any] = {"gettext": None, "ngettext": (1, 2)}
# Babel's default header names the current year, which would change the file every January.
POT_HEADER = (
    "# Translations template for palabre: flow texts and the engine's own messages.\n"
    "# Written by `palabre i18n extract`; edit the flows, not this file.\n#"
)
WIDTH = 76  # babel's and pybabel's default, so files rewritten by either wrap the same way
JINJA_BLOCK = re.compile(r"\{[{%](.*?)[%}]\}", re.DOTALL)
JINJA_OUTPUT_NAME = re.compile(r"\{\{-?\s*([A-Za-z_]\w*)")
NAME = re.compile(r"[A-Za-z_]\w*")

FlowMessage = tuple[int, str, str | tuple[str, str], list[str]]


@dataclass(frozen=True)
class LocaleStats:
    """How much of one locale's catalog is translated (the header entry not counted)."""

    locale: str
    translated: int
    fuzzy: int
    total: int

    @property
    def percent(self) -> float:
        return 100.0 if self.total == 0 else self.translated / self.total * 100


def extract_flow(
    fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: Any
) -> Iterator[FlowMessage]:
    """A babel extraction method for flow YAML files.

    Yields `(lineno, funcname, message, comments)`: "gettext" with a text, or "ngettext"
    with (msgid, msgid_plural); the comment is the text's dotted path in the flow.
    A file that does not parse yields nothing: `palabre check` reports it.
    """
    try:
        text = fileobj.read().decode("utf-8")
    except UnicodeDecodeError:
        return
    flow, _ = parse_flow(parse_source(text, str(getattr(fileobj, "name", "<flow>"))))
    if flow is None:
        return
    for path, item in flow.texts():
        if item.plural is None:
            yield item.where[0], "gettext", item.msgid, [path]
        else:
            yield item.where[0], "ngettext", (item.msgid, item.plural), [path]


def extract(flow_files: list[Path], python_dirs: list[Path], output: Path) -> Catalog:
    """Build the template from the flows and the engine's N_() texts, and write it to `output`.

    The file is left untouched when nothing but its creation date would change.
    """
    template = Catalog(project=PROJECT, domain=DOMAIN, header_comment=POT_HEADER)
    for path in sorted(flow_files):
        # babel's stubs type a method's yield as extract()'s output; the runtime contract is ours.
        found = extract_from_file(extract_flow, path, FLOW_KEYWORDS)  # type: ignore[arg-type]
        _add_found(template, path, found)
    for path in sorted(p for directory in python_dirs for p in directory.rglob("*.py")):
        found = extract_from_file(
            "python", path, PYTHON_KEYWORDS, ("TRANSLATORS:",), strip_comment_tags=True
        )
        _add_found(template, path, found)
    _write_template(template, output)
    return template


def _add_found(template: Catalog, path: Path, found: list[Any]) -> None:
    location = _relative(path)
    for lineno, message, comments, context in found:
        template.add(message, None, [(location, lineno)], auto_comments=comments, context=context)


def _relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _write_template(template: Catalog, output: Path) -> None:
    # Render with the previous file's date: equal bytes mean nothing changed, so keep the file.
    if output.exists():
        with output.open("rb") as handle:
            template.creation_date = read_po(handle).creation_date
        if _render(template) == output.read_bytes():
            return
    template.creation_date = datetime.now(UTC).replace(second=0, microsecond=0)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(_render(template))


def _render(catalog: Catalog) -> bytes:
    buffer = BytesIO()
    write_po(buffer, catalog, width=WIDTH, sort_output=True, include_previous=True)
    return buffer.getvalue()


def update(
    template: Path, locales_dir: Path, locales: list[str], source_locale: str = "en"
) -> list[Path]:
    """Create or refresh each locale's PO from the template; return the PO paths.

    Existing translations are kept; a changed source text becomes fuzzy (with its
    previous msgid shown) when babel finds a close match, and removed texts are kept
    as obsolete (`#~`) entries. Each PO gets babel's current `Plural-Forms`, its plural
    translations moved to the msgstr that now holds their CLDR category. The source
    locale's empty entries get the source text, since the source is already in that language.
    """
    with template.open("rb") as handle:
        source = read_po(handle)
    written = []
    for locale in locales:
        path = po_path(locales_dir, locale)
        catalog = read_catalog(path, locale) if path.exists() else _new_catalog(locale, source)
        _drop_misread_previous_ids(catalog)
        adopt_current_rule(catalog, locale)
        catalog.update(source)
        if locale == source_locale:
            _fill_with_source(catalog, locale)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_render(catalog))
        written.append(path)
    return written


def _drop_misread_previous_ids(catalog: Catalog) -> None:
    # babel writes a fuzzy entry's old msgid as `#| msgid ...` but reads it back as a translator
    # comment, which would then be written as `# | msgid ...` forever; babel's own fuzzy
    # matching shows the previous msgid again whenever it still applies.
    for message in [*catalog, *catalog.obsolete.values()]:
        message.user_comments = [c for c in message.user_comments if not c.startswith("| ")]


def _fill_with_source(catalog: Catalog, locale: str) -> None:
    for message in catalog:
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.id and (not any(strings) or message.fuzzy):
            if isinstance(message.id, tuple | list):
                message.string = source_forms(message.id[0], message.id[1], locale, catalog)
            else:
                message.string = message.id
            message.flags.discard("fuzzy")
            message.previous_id = []  # the text is the source itself: nothing to compare


def _new_catalog(locale: str, template: Catalog) -> Catalog:
    # Babel fills Plural-Forms from the locale's CLDR rule (Arabic: nplurals=6).
    return Catalog(locale=locale, domain=DOMAIN, project=template.project, fuzzy=False)


def compile(locales_dir: Path, locales: list[str]) -> list[Path]:
    """Write `messages.mo` beside each locale's PO, leaving fuzzy entries out.

    Every catalog is checked first: a malformed line, an error from babel's checkers, or a
    translation using a Jinja name the source text lacks raises a PalabreError listing each
    one as `file:line`, and nothing is written.
    """
    catalogs = {_existing_po(locales_dir, locale): locale for locale in locales}
    loaded = {path: _read_strict(path, locale) for path, locale in catalogs.items()}
    problems = [line for path, catalog in loaded.items() for line in _problems(path, catalog)]
    if problems:
        raise PalabreError(
            f"{len(problems)} broken translation(s); fix them in the PO files, "
            "then compile again:\n" + "\n".join(problems)
        )
    written = []
    for path, catalog in loaded.items():
        with path.with_suffix(".mo").open("wb") as handle:
            write_mo(handle, catalog, use_fuzzy=False)
        written.append(path.with_suffix(".mo"))
    return written


def check_catalogs(locales_dir: Path, locales: list[str]) -> list[str]:
    """Every problem in the PO files that exist, as `file:line: ...` lines."""
    found: list[str] = []
    for locale in locales:
        path = po_path(locales_dir, locale)
        if not path.exists():
            continue
        try:
            found += _problems(path, _read_strict(path, locale))
        except PalabreError as exc:
            found.append(str(exc))
    return found


def _existing_po(locales_dir: Path, locale: str) -> Path:
    path = po_path(locales_dir, locale)
    if not path.exists():
        raise PalabreError(f"no catalog for '{locale}' at {path}; run `palabre i18n update` first")
    return path


def _read_strict(path: Path, locale: str) -> Catalog:
    # read_catalog skips a malformed line with a warning; compiling must not lose it silently.
    try:
        with path.open("rb") as handle:
            return read_po(handle, locale=locale, domain=DOMAIN, abort_invalid=True)
    except PoFileError as exc:
        reason = str(exc).removesuffix(f" on {exc.lineno}")  # babel's lineno is 0-based
        raise PalabreError(
            f"{path}:{exc.lineno + 1}: {reason}: {exc.line.strip()!r}; fix it, then compile again"
        ) from exc


def _problems(path: Path, catalog: Catalog) -> list[str]:
    for message in catalog:
        # Palabre texts are Jinja templates: a '%' is literal, never a Python placeholder.
        message.flags.discard("python-format")
    found = [(m, [str(e) for e in errors]) for m, errors in catalog.check()]
    found += [(m, _jinja_errors(m)) for m in catalog if m.id and m.string]
    return [
        f"{path}:{message.lineno}: {_first(message.id)!r}: {error}"
        for message, errors in sorted(found, key=lambda item: item[0].lineno or 0)
        if not message.fuzzy
        for error in errors
    ]


def _jinja_errors(message: Message) -> list[str]:
    known = {
        n
        for block in JINJA_BLOCK.findall(" ".join(_forms(message.id)))
        for n in NAME.findall(block)
    }
    used = {n for form in _forms(message.string) for n in JINJA_OUTPUT_NAME.findall(form)}
    return [
        f"the translation uses {{{{ {n} }}}}, which the source text does not have"
        for n in sorted(used - known)
    ]


def stats(locales_dir: Path, locales: list[str]) -> list[LocaleStats]:
    """Count translated, fuzzy and total messages for each locale."""
    return [
        _locale_stats(locale, read_catalog(_existing_po(locales_dir, locale), locale))
        for locale in locales
    ]


def _locale_stats(locale: str, catalog: Catalog) -> LocaleStats:
    messages = [m for m in catalog if m.id]
    fuzzy = sum(m.fuzzy for m in messages)
    translated = sum(not m.fuzzy and all(_forms(m.string)) for m in messages)
    return LocaleStats(locale, translated, fuzzy, len(messages))


def _forms(value: Any) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, list | tuple) else (value or "",)


def _first(msgid: Any) -> str:
    return str(_forms(msgid)[0])
