"""The loader turns YAML into a Flow and locates every structural mistake."""

from __future__ import annotations

import textwrap

import pytest

from palabre.errors import FlowError
from palabre.flow.loader import load_flow, parse_flow
from palabre.flow.model import Text
from palabre.flow.source import parse_source


def parse(yaml_text: str):
    return parse_flow(parse_source(textwrap.dedent(yaml_text).lstrip(), "flows/t.yaml"))


def messages(yaml_text: str) -> list[str]:
    return [str(problem) for problem in parse(yaml_text)[1]]


def test_a_valid_flow_keeps_step_order_texts_and_locations():
    flow, problems = parse("""
        id: demo
        settings: {expires_after: 30m, default_locale: en}
        steps:
          hello:
            kind: say
            text: Hello {{ lang }}
          name:
            kind: ask
            text: {one: "One try", other: "{{ n }} tries", count: n}
            save_as: name
    """)
    assert problems == []
    assert list(flow.steps) == ["hello", "name"]
    assert flow.start == "hello"
    assert flow.next_of(flow.steps["hello"]) == "name"
    assert flow.settings.expires_after == 1800
    assert flow.steps["hello"].get("text") == Text("Hello {{ lang }}", where=(6, 11))
    assert flow.steps["name"].get("text").plural == "{{ n }} tries"


def test_yaml_syntax_error_is_located_not_raised():
    assert messages("id: x\nsteps: [a\n") == [
        "flows/t.yaml:3:1: YAML syntax: expected ',' or ']', but got '<stream end>' "
        "(check indentation, and quote texts that contain ': ' or start with '{' or '*')"
    ]


def test_unknown_kind_and_key_get_suggestions():
    found = messages("""
        id: demo
        steps:
          a:
            kind: sai
            text: hi
          b:
            kind: say
            txt: hi
    """)
    assert found == [
        "flows/t.yaml:4:11: steps.a.kind: unknown step kind 'sai' (did you mean 'say'?)",
        "flows/t.yaml:6:3: steps.b: a 'say' step needs `text` (add text: the message (a Jinja template))",
        "flows/t.yaml:8:5: steps.b.txt: unknown key 'txt' (did you mean 'text'?)",
    ]


def test_duplicate_step_ids_are_reported_at_the_second_one():
    found = messages("""
        id: demo
        steps:
          a: {kind: say, text: one}
          a: {kind: say, text: two}
    """)
    assert found == [
        "flows/t.yaml:4:3: steps.a: duplicate 'a' (first at line 3) "
        "(each name may appear once here; rename or merge them)"
    ]


def test_wrong_value_types_rules_and_normalizers():
    found = messages("""
        id: demo
        settings: {expires_after: soon, locales: [fr, de]}
        steps:
          q:
            kind: ask
            text: Name?
            save_as: 3name
            normalize: [upper, lettres]
            validate: {min_length: -1, colour: red, regex: "("}
            max_retries: many
    """)
    assert found == [
        "flows/t.yaml:2:27: settings.expires_after: 'soon' is not a duration (write e.g. 30m, 12h or 3d)",
        "flows/t.yaml:2:47: settings.locales[1]: unsupported locale 'de' (known: ar, en, fr)",
        "flows/t.yaml:7:14: steps.q.save_as: '3name' is not a valid name "
        "(use letters, digits and _, starting with a letter)",
        "flows/t.yaml:8:24: steps.q.normalize[1]: unknown normalizer 'lettres' "
        "(did you mean 'letters'?)",
        "flows/t.yaml:9:28: steps.q.validate.min_length: '-1' is not a valid value for "
        "min_length (min_length expects a whole number of 0 or more)",
        "flows/t.yaml:9:32: steps.q.validate.colour: unknown validation rule 'colour' "
        "(known: date, digits, letters, max, max_length, min, min_length, phone, regex)",
        "flows/t.yaml:9:52: steps.q.validate.regex: '(' is not a valid value for regex "
        "(regex expects a valid regular expression)",
        "flows/t.yaml:10:18: steps.q.max_retries: expected a whole number, got 'many'",
    ]


def test_yes_and_no_stay_words():
    flow, problems = parse("""
        id: demo
        steps:
          q:
            kind: ask
            text: OK?
            save_as: ok
            choices: [{id: yes, title: Yes}, {id: no, title: No}]
    """)
    assert problems == []
    assert [c.id for c in flow.steps["q"].get("choices")] == ["yes", "no"]


def test_load_flow_raises_one_error_listing_all_problems(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("id: 1bad\nsteps:\n  a: {kind: nope}\n")
    with pytest.raises(FlowError) as caught:
        load_flow(path)
    assert len(caught.value.problems) == 2
    assert str(caught.value).startswith(f"{path}:1:5: id: '1bad' is not a valid flow id")


@pytest.mark.parametrize("text", ["", "- just\n- a list\n", "id: x\n"])
def test_documents_that_are_not_flows(text):
    _, problems = parse_flow(parse_source(text, "f.yaml"))
    assert problems, f"{text!r} should be refused"


@pytest.mark.parametrize(
    "text",
    [
        "id: !!python/name:os.system x\nsteps: {a: {kind: end}}\n",
        "id: !!int x\nsteps: {a: {kind: end}}\n",
        "id: x\nsteps:\n  ? [a, b]\n  : {kind: end}\n",
        "id: &a x\nsteps: {a: *a}\n",
        "id: x\nsteps: {a: {kind: say, text: !!binary aGk=}}\n",
        "id: x\nsteps: {a: {kind: ask, text: q, save_as: v, choices: [{id: 1}]}}\n",
        "\t\tid: x",
    ],
)
def test_hostile_yaml_is_reported_never_raised(text):
    _, problems = parse_flow(parse_source(text, "f.yaml"))
    assert problems
    assert all(p.file == "f.yaml" and p.line >= 1 and p.column >= 1 for p in problems)


def test_event_triggers_are_read_and_bad_names_located():
    flow, problems = parse(
        """\
        id: called
        triggers: {event: [ticket.called, ticket.soon], fr: [ticket]}
        steps:
          hi: {kind: end, text: "Ticket {{ event.data.ticket }}"}
        """
    )
    assert problems == [] and flow.events == ("ticket.called", "ticket.soon")
    assert flow.triggers == {"fr": ("ticket",)}
    found = messages(
        """\
        id: called
        triggers: {event: "ticket called!"}
        steps:
          hi: {kind: end, text: Hi}
        """
    )
    assert any("'ticket called!' is no event name" in m and ":2:" in m for m in found), found
