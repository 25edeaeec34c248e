"""`palabre check`: whole-flow problems, located at file:line:column."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

from palabre.bootstrap import Toolkit, load_flows
from palabre.cli import main

ROOT = Path(__file__).parent.parent


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def translate(locales: Path, locale: str, pairs: dict[str, str]) -> None:
    catalog = Catalog(locale=locale)
    for source, target in pairs.items():
        catalog.add(source, target)
    folder = locales / locale / "LC_MESSAGES"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "messages.po").open("wb") as handle:
        write_po(handle, catalog)


def problems(
    tmp_path: Path,
    text: str,
    locales: Path | None = None,
    settings: str = "{locales: [en], default_locale: en}",
) -> list[str]:
    path = write(tmp_path, "f.yaml", f"settings: {settings}\n" + textwrap.dedent(text).lstrip())
    _, found = load_flows([path], Toolkit.create(locales))
    return [str(p).replace(f"{tmp_path}/", "") for p in found]


def test_a_typo_in_next_names_the_known_steps(tmp_path):
    assert problems(
        tmp_path,
        """
        id: demo
        steps:
          city: {kind: ask, text: "City?", save_as: city, next: gendre}
          gender: {kind: ask, text: "Gender?", save_as: gender}
          done: {kind: end}
    """,
    ) == [
        "f.yaml:4:57: steps.city.next: unknown step 'gendre' (known: city, done, gender) "
        "(did you mean 'gender'?)",
        "f.yaml:5:3: steps.gender: this step can never be reached "
        "(point a `next` at it, or remove it)",
        "f.yaml:6:3: steps.done: this step can never be reached "
        "(point a `next` at it, or remove it)",
    ]


def test_jinja_errors_and_unset_variables(tmp_path):
    assert problems(
        tmp_path,
        """
        id: demo
        steps:
          greet: {kind: say, text: "Hello {{ name }"}
          early: {kind: say, text: "Code {{ code }}, {{ lang }}"}
          ask: {kind: ask, text: "Name?", save_as: name}
          thanks: {kind: say, text: "Thanks {{ name }}"}
    """,
    ) == [
        "f.yaml:4:28: steps.greet.text: template error: line 1 of the template: "
        "unexpected '}' (check the {{ }} and {% %} pairs)",
        "f.yaml:5:28: steps.early.text: 'code' is not set on any path to this step "
        "(set it with save_as or a `set` step first)",
    ]


def test_a_variable_set_on_only_one_branch_counts_as_set(tmp_path):
    assert (
        problems(
            tmp_path,
            """
        id: demo
        steps:
          q: {kind: ask, text: "Age?", save_as: age}
          route:
            kind: branch
            cases: [{when: "age | int > 17", next: adult}]
          child: {kind: set, vars: {label: child}, next: show}
          adult: {kind: set, vars: {label: adult}}
          show: {kind: end, text: "{{ label }}"}
    """,
        )
        == []
    )


def test_unknown_action_and_flow(tmp_path):
    assert problems(
        tmp_path,
        """
        id: demo
        steps:
          a: {kind: action, action: registry.remembr, with: {value: x}}
          b: {kind: goto, flow: other}
    """,
    ) == [
        "f.yaml:4:29: steps.a.action: unknown action 'registry.remembr' "
        "(did you mean 'registry.remember'?)",
        "f.yaml:5:25: steps.b.flow: unknown flow 'other' (known: demo)",
    ]


def test_missing_translations_and_whatsapp_limits(tmp_path):
    locales = tmp_path / "locales"
    long_title = "A title far too long for a button"
    translate(
        locales, "fr", {"Pick": "Choisissez", long_title: "Un titre bien trop long pour un bouton"}
    )
    found = problems(
        tmp_path,
        f"""
        id: demo
        steps:
          q:
            kind: ask
            text: Pick
            save_as: x
            choices: [{{id: a, title: "{long_title}"}}, {{id: b, title: Short}}]
    """,
        locales,
        settings="{locales: [en, fr], default_locale: en}",
    )
    assert found == [
        "f.yaml:8:30: steps.q.choices[0].title: this button title is 33 characters in 'en', "
        "over WhatsApp's limit of 20 (shorten it)",
        "f.yaml:8:30: steps.q.choices[0].title: this button title is 38 characters in 'fr', "
        "over WhatsApp's limit of 20 (shorten it)",
        "f.yaml:8:83: steps.q.choices[1].title: no 'fr' translation of \"Short\" "
        "(run `palabre i18n update`, then translate it in the fr PO file)",
    ]


def test_a_translation_may_not_invent_variables(tmp_path):
    locales = tmp_path / "locales"
    translate(locales, "fr", {"Hi {{ lang }}": "Salut {{ nom }}"})
    found = problems(
        tmp_path,
        """
        id: demo
        steps:
          a: {kind: say, text: "Hi {{ lang }}"}
    """,
        locales,
        settings="{locales: [en, fr], default_locale: en}",
    )
    assert found == [
        "f.yaml:4:24: steps.a.text: the 'fr' translation uses nom, which the source text "
        "does not (copy the {{ }} names from the source)"
    ]


def test_duplicate_flow_ids_across_files(tmp_path):
    one = write(tmp_path, "one.yaml", "id: same\nsteps: {a: {kind: end}}\n")
    two = write(tmp_path, "two.yaml", "id: same\nsteps: {a: {kind: end}}\n")
    _, found = load_flows([one, two], Toolkit.create(None))
    assert [p.message for p in found] == [f"duplicate flow id 'same' (also in {one})"]


def test_cli_check_exits_1_and_prints_locations(tmp_path, capsys):
    path = write(
        tmp_path,
        "typo.yaml",
        """
        id: typo
        settings: {locales: [en], default_locale: en}
        steps:
          a: {kind: say, text: hi, next: bb}
          b: {kind: end}
    """,
    )
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:4:34: steps.a.next: unknown step 'bb' (known: a, b)" in out


def test_the_shipped_flows_pass_check(capsys):
    status = main(["check", str(ROOT / "flows")])
    assert capsys.readouterr().out == ""
    assert status == 0


@pytest.mark.parametrize("name", ["steps: [", "id: x\nsteps: {a: {kind: say}}\n"])
def test_cli_check_never_shows_a_traceback(tmp_path, capsys, name):
    path = write(tmp_path, "bad.yaml", name)
    assert main(["check", str(path)]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert f"{path}:" in captured.out


def test_cli_check_reports_broken_catalog_lines(tmp_path, capsys):
    locales = tmp_path / "locales"
    translate(locales, "fr", {"Hi": "Salut"})
    po = locales / "fr" / "LC_MESSAGES" / "messages.po"
    po.write_text(po.read_text() + '\nmsgid "Bye"\nmsgstr "Au revoir {{ nom }"\n\ngarbage line\n')
    flow = write(
        tmp_path,
        "f.yaml",
        """
        id: demo
        settings: {locales: [en, fr], default_locale: en}
        steps:
          a: {kind: say, text: Hi}
    """,
    )
    assert main(["check", str(flow)]) == 1
    out = capsys.readouterr().out
    assert f"{po}:" in out
    assert "garbage line" in out


def cli_check(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> list[str]:
    """`palabre check` on one flow: exit status 1, and its output lines without the folder."""
    write(tmp_path, "f.yaml", "settings: {locales: [en], default_locale: en}\n" + text.lstrip())
    assert main(["check", str(tmp_path / "f.yaml")]) == 1
    return capsys.readouterr().out.replace(f"{tmp_path}/", "").splitlines()


def test_check_reports_unknown_filters_and_tests_where_they_are_written(tmp_path, capsys):
    assert cli_check(
        tmp_path,
        capsys,
        """
id: demo
steps:
  q: {kind: ask, text: "Name?", save_as: name}
  shout: {kind: say, text: "Hi {{ name | uper }}"}
  route:
    kind: branch
    cases: [{when: "name is evn", next: done}]
  done: {kind: end, text: "{{ name | shoutify }}"}
""",
    ) == [
        "f.yaml:5:28: steps.shout.text: unknown filter 'uper' (did you mean 'upper'?)",
        "f.yaml:8:20: steps.route.cases[0].when: unknown test 'evn' (did you mean 'even'?)",
        "f.yaml:9:27: steps.done.text: unknown filter 'shoutify' (no filter of that name exists)",
    ]


def test_check_reports_action_arguments_not_taken_and_required_ones_left_out(tmp_path, capsys):
    assert cli_check(
        tmp_path,
        capsys,
        """
id: demo
steps:
  code: {kind: action, action: qr.code, with: {txt: "hello", ttl: "60"}}
  seen: {kind: action, action: registry.remember, with: {value: x, namespace: y}}
  done: {kind: end}
""",
    ) == [
        "f.yaml:4:47: steps.code.with: 'qr.code' needs the argument 'text' "
        "(add `text:` under `with:`)",
        "f.yaml:4:53: steps.code.with.txt: 'qr.code' takes no argument 'txt' "
        "(it takes: text, ttl) (did you mean 'text'?)",
    ]


@pytest.mark.parametrize(
    ("when", "message"),
    [
        (
            "answer = 'yes'",
            "'=' sets a value, it does not compare (use == to compare: answer == 'yes')",
        ),
        (
            "answer == 'yes' && age = 3",
            "'&&' is not Jinja (use and to join conditions: answer == 'yes' and age == 3)",
        ),
        ("!answer", "'!' is not Jinja (use not to negate: not answer)"),
        (
            "answer == 'yes",
            "a quote is not closed (close every quote you open: "
            "answer == 'yes' and age | int > 17)",
        ),
        (
            "if answer == 'yes'",
            "a condition is written without 'if' (write only the test: answer == 'yes')",
        ),
        (
            "answer == yes please",
            "there is more text after the expression than Jinja can "
            "read (join two conditions with and / or, and put words in quotes: answer == 'yes')",
        ),
    ],
)
def test_a_condition_jinja_cannot_read_is_explained_in_plain_words(tmp_path, capsys, when, message):
    quoted = when.replace('"', '\\"')
    assert cli_check(
        tmp_path,
        capsys,
        f"""
id: demo
steps:
  q: {{kind: ask, text: "Yes?", save_as: answer}}
  route:
    kind: branch
    cases:
      - {{when: "{quoted}", next: done}}
  done: {{kind: end}}
""",
    ) == [f"f.yaml:8:16: steps.route.cases[0].when: {message}"]


def test_an_unknown_filter_in_a_translation_is_reported_for_its_language(tmp_path):
    locales = tmp_path / "locales"
    translate(locales, "fr", {"Hi {{ lang }}": "Salut {{ lang | uper }}"})
    found = problems(
        tmp_path,
        """
        id: demo
        steps:
          a: {kind: say, text: "Hi {{ lang }}"}
    """,
        locales,
        settings="{locales: [en, fr], default_locale: en}",
    )
    assert found == [
        "f.yaml:4:24: steps.a.text: the 'fr' translation: unknown filter 'uper' "
        "(did you mean 'upper'?)"
    ]


def test_an_event_flow_is_warned_where_a_step_may_meet_a_closed_window(tmp_path):
    found = problems(
        tmp_path,
        """
        id: called
        triggers: {event: ticket.called}
        steps:
          hello:
            kind: say
            text: "Ticket {{ event.data.ticket }}"
            template: {twilio: {content_sid: HX1, variables: {"1": "{{ event.data.ticket }}"}}}
          coming: {kind: ask, text: "Coming?", save_as: coming}
          thanks: {kind: end, text: "Thanks"}
    """,
    )
    assert len(found) == 1, found
    assert "steps.coming.template" in found[0] and "window_closed" in found[0]
    assert not any("steps.thanks" in p for p in found), "after a question: inside the window"


def test_a_declared_template_is_checked_whole(tmp_path):
    found = problems(
        tmp_path,
        """
        id: alert
        steps:
          alert:
            kind: end
            text: "Trip {{ params.trip }}"
            template:
              meta: {name: trip_alert, components: [{type: body, parameters: [
                {type: text, text: "{{ params.trip }}"}, {type: text, text: "x"}]}]}
              twilio: {content_sid: HX1, variables: {"1": "{{ params.trip }}"}}
              telegram: {}
    """,
    )
    joined = "\n".join(found)
    assert "unknown provider(s) telegram" in joined
    assert "Meta's body has 2 parameters and Twilio's template 1 variables" in joined
    gap = problems(
        tmp_path,
        """
        id: alert
        steps:
          alert: {kind: end, text: "Hi", template: {twilio: {content_sid: HX1, variables: {"2": "x"}}}}
    """,
    )
    assert any('keyed "1", "2"' in p for p in gap), gap


def test_a_content_sid_per_language_names_each_language_left_out(tmp_path):
    found = problems(
        tmp_path,
        """
        id: alert
        steps:
          alert:
            kind: end
            text: "Hi"
            template: {twilio: {content_sid: {fr: HX1, en: HX2}, variables: {}}}
    """,
        settings="{locales: [fr, ar, en], default_locale: fr}",
    )
    sids = [p for p in found if ".template" in p]  # the others: translations still to do
    assert len(sids) == 1, found
    assert "steps.alert.template.twilio.content_sid" in sids[0]
    assert "no content sid for ar: those contacts would get the fr one" in sids[0]
    wrong = problems(
        tmp_path,
        """
        id: alert
        steps:
          alert: {kind: end, text: "Hi", template: {twilio: {content_sid: {fr: SM1}}}}
    """,
    )
    assert any("needs its `content_sid` (HX...), or one per language" in p for p in wrong), wrong


def test_ten_twilio_variables_have_no_gap_and_an_event_starts_one_flow(tmp_path):
    ten = ", ".join(f'"{n}": x' for n in range(1, 11))
    assert (
        problems(
            tmp_path,
            f"""
        id: many
        steps:
          hi: {{kind: end, text: Hi, template: {{twilio: {{content_sid: HX1, variables: {{{ten}}}}}}}}}
    """,
        )
        == []
    )
    first = write(tmp_path, "a.yaml", "id: a\ntriggers: {event: x.done}\nsteps: {s: {kind: end}}\n")
    second = write(
        tmp_path, "b.yaml", "id: b\ntriggers: {event: x.done}\nsteps: {s: {kind: end}}\n"
    )
    _, found = load_flows([first, second], Toolkit.create(None))
    assert any("the event 'x.done' already starts the flow 'a'" in str(p) for p in found), found


def test_a_variable_the_engine_sets_cannot_be_saved_over(tmp_path):
    found = problems(
        tmp_path,
        """
        id: demo
        triggers: {event: ticket.called}
        steps:
          keep:
            kind: ask
            text: "Reply 1 to keep your place"
            save_as: event
          other:
            kind: set
            vars: {lang: "fr", note: "x"}
          done: {kind: end, text: "{{ event.data.ticket }}"}
        """,
    )
    names = "(event, flow, lang, locale, params)"
    assert [line for line in found if "engine sets" in line] == [
        f"f.yaml:8:14: steps.keep.save_as: 'event' is a variable the engine sets {names} "
        "(pick another name, such as event_answer)",
        f"f.yaml:11:11: steps.other.vars: 'lang' is a variable the engine sets {names} "
        "(pick another name, such as lang_answer)",
    ]
