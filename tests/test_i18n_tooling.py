"""`palabre i18n extract|update|compile|stats`: flows and engine texts to PO and MO files."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po
from babel.support import Translations
from tests.test_plurals import msgstrs

from palabre.errors import PalabreError
from palabre.i18n import messages as engine_messages
from palabre.i18n.catalogs import po_path, read_catalog
from palabre.i18n.tooling import LocaleStats, compile, extract, extract_flow, stats, update

ENGINE = Path(engine_messages.__file__).parent

FLOW = """\
id: uic
title: Registration
steps:
  welcome:
    kind: say
    text: Welcome to the clinic.
  gender:
    kind: ask
    text: Are you a man or a woman?
    save_as: gender
    choices: [{id: "1", title: Man}]
  tries:
    kind: say
    text: {one: "One try left", other: "{{ n }} tries left", count: n}
"""
FLOW_TEXTS = ["Welcome to the clinic.", "Are you a man or a woman?", "Man", "One try left"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A deployment folder with one flow, used as the working directory."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "uic.yaml").write_text(FLOW, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_extract(project: Path, python_dirs: list[Path] | None = None) -> Catalog:
    flows = [project / "flows" / "uic.yaml"]
    return extract(flows, python_dirs or [], project / "locales" / "messages.pot")


def translate(path: Path, locale: str, translations: dict[str, str | tuple[str, ...]]) -> None:
    catalog = read_catalog(path, locale)
    for msgid, string in translations.items():
        message = catalog.get(msgid)
        assert message is not None, f"{msgid!r} is not in {path}"
        message.string = string
    buffer = BytesIO()
    write_po(buffer, catalog)
    path.write_bytes(buffer.getvalue())


def test_extract_finds_flow_texts_at_their_lines(project: Path) -> None:
    template = run_extract(project)
    where = {m.id if isinstance(m.id, str) else m.id[0]: m for m in template if m.id}
    assert where["Welcome to the clinic."].locations == [("flows/uic.yaml", 6)]
    assert where["Are you a man or a woman?"].locations == [("flows/uic.yaml", 9)]
    assert where["Man"].locations == [("flows/uic.yaml", 11)]
    assert where["Man"].auto_comments == ["steps.gender.choices[0].title"]
    assert where["Welcome to the clinic."].auto_comments == ["steps.welcome.text"]


def test_a_plural_text_becomes_a_plural_entry(project: Path) -> None:
    template = run_extract(project)
    message = template.get("One try left")
    assert message is not None and message.pluralizable
    assert message.id == ("One try left", "{{ n }} tries left")
    assert 'msgid_plural "{{ n }} tries left"' in (project / "locales/messages.pot").read_text()


def test_extract_finds_the_engine_texts(project: Path) -> None:
    template = run_extract(project, [ENGINE])
    assert template.get(engine_messages.EXPIRED) is not None
    assert template.get(engine_messages.HELP) is not None, "implicitly joined strings are found"
    assert all(template.get(text) is not None for text in FLOW_TEXTS)


def test_extract_again_leaves_the_template_byte_identical(project: Path) -> None:
    run_extract(project, [ENGINE])
    pot = project / "locales" / "messages.pot"
    first = pot.read_bytes()
    pot.write_bytes(first.replace(b"POT-Creation-Date: 20", b"POT-Creation-Date: 19"))
    older = pot.read_bytes()
    run_extract(project, [ENGINE])
    assert pot.read_bytes() == older, "an unchanged template must not be rewritten"


def test_extract_rewrites_the_template_when_a_text_changes(project: Path) -> None:
    run_extract(project)
    flow = project / "flows" / "uic.yaml"
    flow.write_text(FLOW.replace("Welcome to the clinic.", "Welcome!"), encoding="utf-8")
    template = run_extract(project)
    assert template.get("Welcome!") is not None
    assert "Welcome to the clinic." not in (project / "locales/messages.pot").read_text()


@pytest.mark.parametrize("text", ["steps: [unclosed", "- just\n- a list\n", "\xff\xfe"])
def test_a_malformed_flow_yields_nothing(text: str) -> None:
    found = list(extract_flow(BytesIO(text.encode("latin-1")), {}, [], {}))
    assert found == []


def test_update_creates_catalogs_with_the_locale_plural_forms(project: Path) -> None:
    run_extract(project)
    written = update(project / "locales/messages.pot", project / "locales", ["fr", "ar", "en"])
    assert written == [po_path(project / "locales", loc) for loc in ("fr", "ar", "en")]
    arabic = read_catalog(written[1], "ar")
    assert arabic.num_plurals == 6
    assert "nplurals=6" in written[1].read_text(encoding="utf-8")
    assert not arabic.fuzzy, "a new catalog's header is not fuzzy"
    assert arabic.get("Man") is not None


def test_update_keeps_translations_and_marks_changed_texts(project: Path) -> None:
    run_extract(project)
    pot, locales = project / "locales/messages.pot", project / "locales"
    (fr,) = update(pot, locales, ["fr"])
    translate(fr, "fr", {"Man": "Homme", "Are you a man or a woman?": "Êtes-vous un homme ?"})
    flow = project / "flows/uic.yaml"
    flow.write_text(FLOW.replace("man or a woman?", "man or a woman, please?"), encoding="utf-8")
    run_extract(project)
    update(pot, locales, ["fr"])
    catalog = read_catalog(fr, "fr")
    assert catalog["Man"].string == "Homme" and not catalog["Man"].fuzzy
    changed = catalog.get("Are you a man or a woman, please?")
    assert changed is not None
    assert changed.fuzzy or not changed.string, "a changed text is fuzzy or untranslated"
    assert catalog.get("Are you a man or a woman?") is None


def test_update_leaves_no_previous_msgid_behind_as_a_comment(project: Path) -> None:
    run_extract(project)
    pot, locales = project / "locales/messages.pot", project / "locales"
    (fr,) = update(pot, locales, ["fr"])
    translate(fr, "fr", {"Are you a man or a woman?": "Êtes-vous un homme ?"})
    flow = project / "flows/uic.yaml"
    flow.write_text(FLOW.replace("man or a woman?", "man or a woman, please?"), encoding="utf-8")
    run_extract(project)
    update(pot, locales, ["fr"])
    assert "#| msgid" in fr.read_text(encoding="utf-8"), "babel shows the previous msgid"
    update(pot, locales, ["fr"])
    update(pot, locales, ["fr"])
    assert "# |" not in fr.read_text(encoding="utf-8")


def test_update_again_changes_nothing(project: Path) -> None:
    run_extract(project)
    (fr,) = update(project / "locales/messages.pot", project / "locales", ["fr"])
    first = fr.read_bytes()
    update(project / "locales/messages.pot", project / "locales", ["fr"])
    assert fr.read_bytes() == first


def test_compile_writes_a_loadable_mo_without_fuzzy_entries(project: Path) -> None:
    run_extract(project)
    (fr,) = update(project / "locales/messages.pot", project / "locales", ["fr"])
    forms = {"one": "Un essai", "many": "{{ n }} d’essais", "other": "{{ n }} essais"}
    translate(fr, "fr", {"Man": "Homme", "One try left": msgstrs("fr", forms)})
    catalog = read_catalog(fr, "fr")
    catalog["Welcome to the clinic."].string = "Bienvenue"
    catalog["Welcome to the clinic."].flags.add("fuzzy")
    buffer = BytesIO()
    write_po(buffer, catalog)
    fr.write_bytes(buffer.getvalue())

    (mo,) = compile(project / "locales", ["fr"])
    assert mo == fr.with_suffix(".mo")
    with mo.open("rb") as handle:
        translations = Translations(handle)
    assert translations.gettext("Man") == "Homme"
    for n in (1, 3, 1_000_000):
        expected = forms[Locale.parse("fr").plural_form(n)]
        assert translations.ngettext("One try left", "{{ n }} tries left", n) == expected
    assert translations.ngettext("One try left", "{{ n }} tries left", 3) == "{{ n }} essais"
    assert translations.gettext("Welcome to the clinic.") == "Welcome to the clinic."


def test_compile_reports_broken_translations_with_their_lines(project: Path) -> None:
    run_extract(project)
    (fr,) = update(project / "locales/messages.pot", project / "locales", ["fr"])
    translate(fr, "fr", {"One try left": ("Un essai", "{{ nombre }} essais")})
    with pytest.raises(PalabreError) as caught:
        compile(project / "locales", ["fr"])
    line = next(i for i, t in enumerate(fr.read_text().splitlines(), 1) if "One try left" in t)
    assert f"{fr}:{line}: 'One try left':" in str(caught.value)
    assert "{{ nombre }}" in str(caught.value)
    assert not fr.with_suffix(".mo").exists(), "nothing is written when a catalog is broken"


def test_compile_reports_a_malformed_po_line(project: Path) -> None:
    run_extract(project)
    (fr,) = update(project / "locales/messages.pot", project / "locales", ["fr"])
    lines = fr.read_text(encoding="utf-8").splitlines()
    fr.write_text("\n".join([*lines, "", 'msgid "Man"', 'msgtsr "Homme"']) + "\n")
    with pytest.raises(PalabreError) as caught:
        compile(project / "locales", ["fr"])
    assert f"{fr}:{len(lines) + 3}: " in str(caught.value)
    assert "'msgtsr \"Homme\"'" in str(caught.value)


def test_a_percent_sign_is_not_a_placeholder(project: Path) -> None:
    flow = project / "flows/uic.yaml"
    flow.write_text(FLOW.replace("Welcome to the clinic.", "50% off today"), encoding="utf-8")
    run_extract(project)
    (fr,) = update(project / "locales/messages.pot", project / "locales", ["fr"])
    translate(fr, "fr", {"50% off today": "50 % de réduction"})
    assert compile(project / "locales", ["fr"]) == [fr.with_suffix(".mo")]


def test_stats_counts_translated_fuzzy_and_total(project: Path) -> None:
    (project / "flows/uic.yaml").write_text(
        "id: short\nsteps:\n  a: {kind: say, text: One}\n  b: {kind: say, text: Two}\n"
        "  c: {kind: say, text: Three}\n  d: {kind: say, text: {one: x, other: y, count: n}}\n",
        encoding="utf-8",
    )
    run_extract(project)
    pot, locales = project / "locales/messages.pot", project / "locales"
    fr, _ = update(pot, locales, ["fr", "en"])
    translate(fr, "fr", {"One": "Un", "x": ("x", "")})
    catalog = read_catalog(fr, "fr")
    catalog["Two"].string = "Deux"
    catalog["Two"].flags.add("fuzzy")
    buffer = BytesIO()
    write_po(buffer, catalog)
    fr.write_bytes(buffer.getvalue())

    french, english = stats(locales, ["fr", "en"])
    assert french == LocaleStats("fr", translated=1, fuzzy=1, total=4)
    # English is the source language: update() fills its entries with the source text.
    assert english == LocaleStats("en", translated=4, fuzzy=0, total=4)
    assert french.percent == pytest.approx(25.0)


def test_percent() -> None:
    assert LocaleStats("fr", 1, 0, 3).percent == pytest.approx(33.333, abs=0.001)
    assert LocaleStats("fr", 0, 0, 0).percent == 100.0


def test_a_missing_catalog_says_what_to_run(project: Path) -> None:
    with pytest.raises(PalabreError, match="palabre i18n update"):
        stats(project / "locales", ["fr"])
