"""Plural texts keyed by CLDR category, read through each language's own plural rule.

Every expectation comes from babel (`Locale.plural_form`, `get_plural`), never from a
hard-coded number of forms, so the next CLDR release cannot turn these tests red.
"""

from __future__ import annotations

import gettext
import textwrap
from pathlib import Path

import pytest
from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.plurals import get_plural
from babel.messages.pofile import write_po

from palabre.bootstrap import Toolkit, load_flows
from palabre.errors import TemplateError
from palabre.flow.model import Text
from palabre.i18n.catalogs import Catalogs, po_path, read_catalog
from palabre.i18n.templates import Templates
from palabre.i18n.tooling import extract, update
from palabre.runtime.speech import Speech

MSGID = ("{{ n }} try left", "{{ n }} tries left")
TEXT = Text(*MSGID, count="n", forms=(("one", MSGID[0]), ("other", MSGID[1])))
FRENCH = {
    "one": "{{ n }} essai restant",
    "many": "{{ n }} d’essais restants",
    "other": "{{ n }} essais restants",
}
ARABIC = {
    "zero": "لا محاولات",
    "one": "محاولة واحدة",
    "two": "محاولتان",
    "few": "{{ n }} محاولات",
    "many": "{{ n }} محاولة",
    "other": "{{ n }} محاولةً",
}
NUMBERS = (*range(0, 30), 100, 101, 111, 1000, 1_000_000, 2_000_000)


def categories(locale: str) -> list[str]:
    """Every category babel's rule gives a whole number in `locale`, with one example each."""
    rule = Locale.parse(locale).plural_form
    return sorted({rule(n) for n in (*range(1001), 1_000_000)})


def example(locale: str, category: str) -> int:
    rule = Locale.parse(locale).plural_form
    return next(n for n in (*range(1001), 1_000_000) if rule(n) == category)


def msgstrs(locale: str, by_category: dict[str, str], plural_forms: str | None = None) -> tuple:
    """`by_category` laid out as the msgstrs of a catalog with `plural_forms` (babel's today).

    Each index gets the form of the category babel gives the first number that lands on it.
    """
    header = plural_forms or get_plural(locale).plural_forms
    nplurals = int(header.split("nplurals=")[1].split(";")[0])
    pick = gettext.c2py(header.split("plural=")[1].rstrip(";"))
    rule = Locale.parse(locale).plural_form
    first = {}
    for n in (*range(1001), 1_000_000):
        first.setdefault(pick(n), rule(n))
    return tuple(by_category.get(first.get(i, ""), "") for i in range(nplurals))


def write_catalog(
    locales: Path, locale: str, strings: tuple, plural_forms: str | None = None
) -> Path:
    catalog = Catalog(locale=locale)
    if plural_forms:
        catalog.mime_headers = [("Plural-Forms", plural_forms)]
    catalog.add(MSGID, strings)
    path = po_path(locales, locale)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        write_po(handle, catalog)
    return path


def say(locales: Path, lang: str, n: int, text: Text = TEXT) -> str:
    return Speech(Catalogs(locales), Templates()).say(text, lang, {"n": n}, "steps.left.text")


@pytest.mark.parametrize("n", NUMBERS)
def test_french_reads_the_form_of_the_category_babel_gives(tmp_path, n):
    write_catalog(tmp_path, "fr", msgstrs("fr", FRENCH))
    expected = FRENCH[Locale.parse("fr").plural_form(n)]
    assert say(tmp_path, "fr", n) == expected.replace("{{ n }}", str(n))


def test_a_million_is_french_many_when_babel_says_so(tmp_path):
    write_catalog(tmp_path, "fr", msgstrs("fr", FRENCH))
    category = Locale.parse("fr").plural_form(1_000_000)
    assert say(tmp_path, "fr", 1_000_000) == FRENCH[category].replace("{{ n }}", "1000000")
    assert say(tmp_path, "fr", 2) == "2 essais restants"


@pytest.mark.parametrize("category", categories("ar"))
def test_arabic_has_a_form_for_each_of_its_categories(tmp_path, category):
    write_catalog(tmp_path, "ar", msgstrs("ar", ARABIC))
    n = example("ar", category)
    assert say(tmp_path, "ar", n) == ARABIC[category].replace("{{ n }}", str(n))


def test_arabic_categories_are_all_reached(tmp_path):
    write_catalog(tmp_path, "ar", msgstrs("ar", ARABIC))
    said = {say(tmp_path, "ar", example("ar", c)) for c in categories("ar")}
    assert len(said) == len(categories("ar")) == get_plural("ar").num_plurals


@pytest.mark.parametrize(
    ("locale", "forms", "old_header"),
    [
        ("fr", FRENCH, "nplurals=2; plural=(n > 1);"),
        # What an older babel wrote for Arabic: `many` and `other` in the other order.
        (
            "ar",
            ARABIC,
            "nplurals=6; plural=(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 "
            ": n%100>=0 && n%100<=2 ? 4 : 5);",
        ),
    ],
)
def test_a_catalog_written_under_an_older_rule_still_reads_right(
    tmp_path, locale, forms, old_header
):
    strings = msgstrs(locale, forms, old_header)
    write_catalog(tmp_path, locale, strings, old_header)
    pick = gettext.c2py(old_header.split("plural=")[1].rstrip(";"))
    for n in NUMBERS:
        assert say(tmp_path, locale, n) == strings[pick(n)].replace("{{ n }}", str(n)), n


def test_an_empty_form_falls_back_to_the_same_language_other_form(tmp_path):
    category = next(c for c in categories("ar") if c != "other")
    write_catalog(tmp_path, "ar", msgstrs("ar", {**ARABIC, category: ""}))
    n = example("ar", category)
    assert say(tmp_path, "ar", n) == ARABIC["other"].replace("{{ n }}", str(n))


def test_an_untranslated_text_uses_the_source_form_by_the_source_rule(tmp_path):
    write_catalog(tmp_path, "fr", msgstrs("fr", {}))
    for n in (0, 1, 2):
        form = MSGID[0] if Locale.parse("en").plural_form(n) == "one" else MSGID[1]
        assert say(tmp_path, "fr", n) == form.replace("{{ n }}", str(n))


def test_a_count_that_is_not_a_number_is_a_template_error(tmp_path):
    with pytest.raises(TemplateError, match=r"steps.left.text.count: .*must be a number"):
        say(tmp_path, "fr", "beaucoup")  # type: ignore[arg-type]


def flow(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "flows" / "f.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


PLURAL_TEXT = '{one: "{{ n }} try left", other: "{{ n }} tries left", count: n}'
PLURAL_FLOW = """
    id: demo
    settings: {locales: [en, fr], default_locale: fr}
    steps:
      set: {kind: set, vars: {n: "2"}}
      left: {kind: say, text: PLURAL_TEXT}
""".replace("PLURAL_TEXT", PLURAL_TEXT)


def test_a_flow_writes_plural_forms_by_category_and_other_is_required(tmp_path):
    ok = flow(tmp_path, PLURAL_FLOW.replace("count: n}", "few: '{{ n }} tries', count: n}"))
    flows, problems = load_flows([ok], Toolkit.create(None))
    assert [p for p in problems if p.topic != "translation"] == []
    text = flows["demo"].steps["left"].get("text")
    assert dict(text.forms) == {
        "one": "{{ n }} try left",
        "few": "{{ n }} tries",
        "other": "{{ n }} tries left",
    }
    for broken in (
        '{one: "x", count: n}',
        '{one: "x", other: "y", several: "z", count: n}',
        '{one: "x", other: "y"}',
    ):
        bad = flow(tmp_path, PLURAL_FLOW.replace(PLURAL_TEXT, broken))
        _, problems = load_flows([bad], Toolkit.create(None))
        assert any("steps.left.text: expected a text" in str(p) for p in problems), broken


def test_check_warns_on_an_empty_form_naming_the_locale_and_the_place(tmp_path):
    locales = tmp_path / "locales"
    category = Locale.parse("fr").plural_form(1_000_000)
    category = category if category != "other" else "one"
    write_catalog(locales, "fr", msgstrs("fr", {**FRENCH, category: ""}))
    _, problems = load_flows([flow(tmp_path, PLURAL_FLOW)], Toolkit.create(locales))
    warnings = [str(p) for p in problems if p.severity == "warning"]
    assert len(warnings) == 1, warnings
    assert "f.yaml:5:" in warnings[0] and "steps.left.text" in warnings[0]
    assert "the 'fr' translation lacks the `" + category + "` form" in warnings[0]
    assert not [p for p in problems if p.severity == "error"]


def test_check_is_quiet_when_every_form_is_filled(tmp_path):
    locales = tmp_path / "locales"
    write_catalog(locales, "fr", msgstrs("fr", FRENCH))
    _, problems = load_flows([flow(tmp_path, PLURAL_FLOW)], Toolkit.create(locales))
    assert problems == []


@pytest.mark.parametrize(
    ("locale", "forms", "old_header"),
    [
        ("fr", FRENCH, "nplurals=2; plural=(n > 1);"),
        ("ar", ARABIC, "nplurals=3; plural=(n==0 ? 0 : n==1 ? 1 : 2);"),
    ],
)
def test_update_writes_current_plural_forms_and_moves_translations(
    tmp_path, monkeypatch, locale, forms, old_header
):
    monkeypatch.chdir(tmp_path)
    locales = tmp_path / "locales"
    old = msgstrs(locale, forms, old_header)
    po = write_catalog(locales, locale, old, old_header)
    extract([flow(tmp_path, PLURAL_FLOW)], [], locales / "messages.pot")
    update(locales / "messages.pot", locales, [locale])

    catalog = read_catalog(po, locale)
    assert catalog.plural_forms == get_plural(locale).plural_forms
    message = catalog.get(MSGID[0])
    assert message is not None and not message.fuzzy
    assert len(message.string) == get_plural(locale).num_plurals
    pick = gettext.c2py(old_header.split("plural=")[1].rstrip(";"))
    for n in NUMBERS:
        assert say(locales, locale, n) == old[pick(n)].replace("{{ n }}", str(n)), n


def test_update_twice_is_stable_after_a_rule_change(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    locales = tmp_path / "locales"
    po = write_catalog(locales, "fr", ("a", "b"), "nplurals=2; plural=(n > 1);")
    extract([flow(tmp_path, PLURAL_FLOW)], [], locales / "messages.pot")
    update(locales / "messages.pot", locales, ["fr"])
    first = po.read_bytes()
    update(locales / "messages.pot", locales, ["fr"])
    assert po.read_bytes() == first


def test_the_source_locale_catalog_gets_the_source_forms_by_category(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    locales = tmp_path / "locales"
    extract([flow(tmp_path, PLURAL_FLOW)], [], locales / "messages.pot")
    (en,) = update(locales / "messages.pot", locales, ["en"])
    assert read_catalog(en, "en").plural_forms == get_plural("en").plural_forms
    for n in (0, 1, 2, 1_000_000):
        form = MSGID[0] if Locale.parse("en").plural_form(n) == "one" else MSGID[1]
        assert say(locales, "en", n) == form.replace("{{ n }}", str(n))


def test_the_schema_offers_every_category_and_requires_other_and_count():
    import jsonschema

    from palabre.flow.fields import TYPES

    validator = jsonschema.Draft202012Validator(TYPES["text"].schema)
    assert validator.is_valid({"one": "a", "few": "b", "many": "c", "other": "d", "count": "n"})
    assert not validator.is_valid({"one": "a", "count": "n"})
    assert not validator.is_valid({"one": "a", "other": "b"})
    assert not validator.is_valid({"other": "b", "several": "c", "count": "n"})
