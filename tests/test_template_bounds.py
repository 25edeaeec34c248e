"""A runaway template ends its own render with a TemplateError, and `check` sees what it can.

Each bound is reached through a deterministic budget (steps, sizes, depth), never by timing.
The last test runs a real `palabre serve`: a template looping a billion times gets the
friendly error, while /healthz and another conversation are answered.
"""

from __future__ import annotations

import logging
import math
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from tests.serving import start_serve

from palabre.bootstrap import Toolkit, build_engine, load_flows
from palabre.config import Settings
from palabre.errors import TemplateError
from palabre.i18n import bounds
from palabre.i18n.bounds import (
    MAX_DEPTH,
    MAX_OUTPUT,
    MAX_RANGE,
    BoundExceeded,
    Limits,
    budget,
    deep_size,
    per_turn,
)
from palabre.i18n.filters import FILTERS
from palabre.i18n.messages import INTERNAL_ERROR
from palabre.i18n.templates import Templates
from palabre.runtime.messages import Inbound

WHERE = "demo.spin.text"
NESTED = (
    "{% for a in range(n) %}{% for b in range(n) %}{% for c in range(n) %}."
    "{% endfor %}{% endfor %}{% endfor %}"
)


def stopped(source: str, templates: Templates | None = None, **variables: object) -> str:
    """The TemplateError message of rendering `source`; fails if it renders or raises another."""
    with pytest.raises(TemplateError) as error:
        (templates or Templates()).render(source, {"n": 1000, **variables}, where=WHERE)
    message = str(error.value)
    assert message.startswith(f"{WHERE}: "), message
    return message


def test_nested_loops_stop_at_the_step_budget_not_the_clock():
    no_deadline = Templates(limits=Limits(steps=5_000, seconds=3600))
    assert "loops and calls ran more than 5000 steps" in stopped(NESTED, no_deadline)


def test_the_step_budget_counts_every_loop_of_the_render_together():
    source = "{% for a in range(60) %}.{% endfor %}{% for b in range(60) %}.{% endfor %}"
    templates = Templates(limits=Limits(steps=100, seconds=3600))
    assert "more than 100 steps" in stopped(source, templates)
    assert Templates(limits=Limits(steps=130, seconds=3600)).render(source, {}, where=WHERE)


def test_a_render_past_its_deadline_stops_at_the_next_step():
    no_time = Templates(limits=Limits(seconds=0))
    assert "rendering took longer than 0 ms" in stopped("{% for a in [1] %}{% endfor %}", no_time)


class SteppingClock:
    """A CPU clock that advances a fixed amount each time it is read."""

    def __init__(self, tick: float) -> None:
        self.now, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def test_the_renders_of_one_turn_share_one_time_allowance():
    tick = 1 / 64  # exact in binary, so the sums below are exact
    clock, limits = SteppingClock(tick), Limits(seconds=5 * tick)
    with per_turn(10 * tick) as allowance:
        for _ in range(3):  # each render is well inside its own limit
            with budget(limits, clock) as render:
                render.step()
        assert allowance.spent == 6 * tick
        late = budget(limits, clock)
        with pytest.raises(BoundExceeded, match="rendering took longer"), late as render:
            for _ in range(4):  # 4 ticks: within one render's 5, not the turn's 4 left
                render.step()
    with budget(limits, clock) as outside_a_turn:
        for _ in range(4):  # the same render alone is fine
            outside_a_turn.step()


def test_range_is_capped():
    assert f"range() of 1000000000 numbers is over the limit of {MAX_RANGE}" in stopped(
        "{{ range(10**9)|list|length }}"
    )
    assert "range() of" in stopped("{% for i in range(10**30) %}{% endfor %}")


@pytest.mark.parametrize(
    "source",
    [
        "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
        "{% macro f() %}{{ g() }}{% endmacro %}{% macro g() %}{{ f() }}{% endmacro %}{{ f() }}",
        "{% macro f() %}{{ caller() }}{% endmacro %}"
        "{% macro g() %}{% call f() %}{{ g() }}{% endcall %}{% endmacro %}{{ g() }}",
        "{% for x in [[1]] recursive %}{{ loop(range(10)) }}{% endfor %}",
    ],
)
def test_recursive_macros_and_loops_stop_at_a_fixed_depth(source):
    assert f"macros or recursive loops nested more than {MAX_DEPTH} levels deep" in stopped(source)


def test_doubling_macros_stop_at_the_step_budget():
    source = (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(18) }}"
    )
    templates = Templates(limits=Limits(steps=10_000, seconds=3600))
    assert "more than 10000 steps" in stopped(source, templates)


@pytest.mark.parametrize(
    ("source", "bound"),
    [
        ("{{ 'x' * 10**7 }}", "a value of 10000000 characters"),
        ("{{ [0] * 10**9 }}", "a value of 1000000000 characters or items"),
        ("{{ 10 ** 5000 }}", "a number of over 4096 bits"),
        ("{{ 10.0 ** 5000 }}", "a number is too large"),
        ("{{ 'x'|center(10**9) }}", "the width argument of 1000000000"),
        ("{{ 'x'.ljust(10**9) }}", "an argument of ljust() of 1000000000"),
        ("{{ (1).to_bytes(10**9, 'big') }}", "an argument of to_bytes() of 1000000000"),
        ("{{ '%1000000000d'|format(1) }}", "a format width of 1000000000"),
        ("{{ '%*d' % (10**9, 1) }}", "a format width of 1000000000"),
        ("{{ '{:1000000000}'.format(1) }}", "a format width of 1000000000"),
        ("{{ '{:{w}}'.format(1, w=10**9) }}", "a format width of 1000000000"),
        ("{{ ('x' * 10**4)|replace('x', 'y' * 10**4) }}", "a value of 100000000"),
        ("{{ ('x' * 10**4).replace('x', 'y' * 10**4) }}", "a value of 100000000"),
        ("{{ (['x' * 10**4] * 10**3)|join }}", "a value of 10000000"),
        ("{{ ('x' * 10**4).translate({120: 'y' * 10**4}) }}", "a value of 100000000"),
        ("{{ ('\t' * 10**4).expandtabs(10**4) }}", "a value of 100010000"),
        ("{{ ('x\n' * 10**4)|indent(100) }}", "a value of 1020100"),
        ("{{ ('x ' * 10**4)|wordwrap(1, wrapstring='y' * 10**3) }}", "a value of"),
        ("{{ ([[1]] * 10**4)|sum(start=[]) }}", "the work of sum()"),
        ("{{ [1]|slice(10**9)|list }}", "the slices argument of 1000000000"),
        ("{{ [1]|batch(10**9, 0)|list }}", "the linecount argument of 1000000000"),
        ("{{ (range(10**4)|list)|tojson(indent=100) }}", "a value of"),
        (
            "{% set ns = namespace(s='x' * 1000) %}"
            "{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "a value of 128000 characters",
        ),
    ],
)
def test_values_too_big_are_refused_before_they_are_made(source, bound):
    assert bound in stopped(source)


def test_deep_size_counts_shared_references_each_time_and_stops_past_the_limit():
    row = list(range(10))
    assert deep_size("abc", 100) == 3
    assert deep_size([row, row], 100) == 22  # each reference counts, as printing it would
    assert deep_size({"k": ["", "ab"]}, 100) == 5  # key, value, 2 items, "b"
    assert deep_size([10**400], 1000) == 332  # about the digits of a number, never more
    huge = [[row] * 10**4] * 10**4  # 10**9 items, held in a few megabytes
    assert 1000 < deep_size(huge, 1000) <= 1000 + 10**4  # the walk stopped near the limit


SMALL = Limits(value=1000, output=1000)


class Tripwire:
    """An item that records every attempt to print, compare or serialise it."""

    def __init__(self) -> None:
        self.touched: list[str] = []

    def __repr__(self) -> str:
        self.touched.append("text")
        return "t"

    def __lt__(self, other: object) -> bool:
        self.touched.append("compared")
        return False


@pytest.mark.parametrize(
    ("source", "bound"),
    [
        ("{{ rows }}", "the text is longer than 1000 characters"),
        ("{{ rows|string }}", "an argument of string of more than 1000"),
        ("{{ '' ~ rows }}", "a value of more than 1000"),
        ("{{ rows|tojson }}", "an argument of tojson of more than 1000"),
        ("{{ attrs|xmlattr }}", "an argument of xmlattr of more than 1000"),
        ("{{ {'k': rows}|xmlattr }}", "a value of more than 1000"),
        ("{{ rows|pprint }}", "an argument of pprint of more than 1000"),
        ("{{ flat|sort|first }}", "an argument of sort of more than 1000"),
        ("{{ rows|title }}", "an argument of title of more than 1000"),
        ("{{ flat|join }}", "an argument of join of more than 1000"),
        ("{{ dict(k=rows)|length }}", "a value of more than 1000"),
    ],
)
def test_a_value_holding_too_much_is_refused_before_it_is_printed_sorted_or_serialised(
    source, bound
):
    wire = Tripwire()
    rows = [[wire] * 50] * 50  # 50 references to one row: 2,550 items to print
    variables = {"rows": rows, "flat": [wire] * 2000, "attrs": {"k": rows}}
    assert bound in stopped(source, Templates(limits=SMALL), **variables)
    assert wire.touched == [], "the value was turned into text or sorted before it was measured"


@pytest.mark.parametrize(
    ("source", "bound"),
    [
        ("{% set a = range(100)|list %}{% set b = [a] * 100 %}", "a value of 10100 characters"),
        ("{% set a = [0] * 600 %}{% set b = [a] + [a] %}", "a value of 1202 characters"),
        (
            "{% set ns = namespace(l=[0]) %}"
            "{% for i in range(30) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}",
            "a value of more than 1000",
        ),
        ("{{ v|spread|length }}", "a value of more than 1000 characters"),
    ],
)
def test_what_a_template_makes_is_measured_through_nested_lists(source, bound):
    """`*`, `+`, a literal and a filter's result each hold a thousand items, through
    references to one list, though their outer length is small."""
    templates = Templates({"spread": lambda v: [[v] * 10] * 100}, limits=SMALL)
    assert bound in stopped(source, templates, v="a")


def test_a_custom_filters_numbers_are_bounded_before_it_runs():
    calls = []
    templates = Templates({**FILTERS, "spy": lambda v, n: calls.append(n)}, limits=SMALL)
    assert "an argument of fit of 5000 characters or items" in stopped(
        "{{ 'a'|fit(width) }}", templates, width=5000
    )
    assert "an argument of spy of 5000" in stopped("{{ 'a'|spy(width) }}", templates, width=5000)
    assert calls == []
    assert templates.render("{{ 'LI'|fit(3) }}", {}, where=WHERE) == "LIX"


def test_the_output_is_capped_while_it_streams():
    assert f"the text is longer than {MAX_OUTPUT} characters" in stopped(
        "{% for i in range(10000) %}xxxxxxxxxx{% endfor %}"
    )


def test_everything_a_render_makes_counts_towards_one_memory_budget():
    source = (
        "{% macro m() %}{% for i in range(10000) %}{% set x = ('x' * 50000) ~ i %}{% endfor %}"
        "{% endmacro %}{{ m()|length }}"
    )
    assert "the template made more than 4000000 characters in all" in stopped(source)


@pytest.mark.parametrize(
    ("source", "cause"),
    [
        ("{{ 1 / 0 }}", "ZeroDivisionError while rendering"),
        ("{{ " + "9" * 5000 + " }}", "a number has too many digits"),
        ("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "nests or recurses too deeply"),
        ("{{ 'a' - 1 }}", "TypeError while rendering"),
    ],
)
def test_python_errors_of_a_template_are_template_errors_without_their_text(source, cause):
    assert cause in stopped(source)


def test_an_expression_is_bounded_too():
    with pytest.raises(TemplateError, match="range\\(\\) of 1000000000 numbers"):
        Templates().evaluate("range(10**9)|list|length > 1", {}, where=WHERE)


def test_ordinary_templates_render_as_before():
    source = textwrap.dedent(
        """\
        {% macro row(x) %}{{ x|upper|center(7) }}{% endmacro %}
        {%- for item in items %}{{ loop.index }}.{{ row(item) }}{% endfor %}
        {{ items|join(', ') }} {{ '%s=%05d'|format('n', n) }} {{ '{:>4}'.format(n) }}
        {{ 'ab' * 3 }} {{ 2 ** 10 }} {{ [1] + [2] }} {{ [[1], [2]]|sum(start=[]) }}
        {% filter upper %}done{% endfilter %} {{ range(3)|list }}"""
    )
    assert Templates().render(source, {"items": ["a", "b"], "n": 42}, where=WHERE) == (
        "1.   A   2.   B   \na, b n=00042   42\nababab 1024 [1, 2] [1, 2]\nDONE [0, 1, 2]"
    )


def flow_problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "f.yaml"
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    _, found = load_flows([path], Toolkit.create(None))
    return [str(p).replace(f"{tmp_path}/", "") for p in found]


def test_check_flags_the_runaways_it_can_see(tmp_path):
    found = flow_problems(
        tmp_path,
        """
        id: demo
        settings: {locales: [en], default_locale: en}
        steps:
          a: {kind: say, text: "{% for i in range(100000) %}.{% endfor %}"}
          b: {kind: say, text: "{{ range(10**9)|list }}"}
          c: {kind: say, text: "{{ 'x' * 10**7 }}"}
          d: {kind: say, text: "{{ 2 ** (10 ** 9) }}"}
          e:
            kind: say
            text: |
              {% for a in range(1000) %}{% for b in range(1000) %}.{% endfor %}{% endfor %}
              {% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}
              {% for a in lang %}{% for b in lang %}{% for c in lang %}.{% endfor %}{% endfor %}{% endfor %}
        """,
    )
    stop = "this would stop the message:"
    assert found == [
        f"f.yaml:4:24: steps.a.text: {stop} range() of 100000 numbers is over the limit of 10000",
        f"f.yaml:5:24: steps.b.text: {stop} range() of 1000000000 numbers is over the limit "
        "of 10000",
        f"f.yaml:6:24: steps.c.text: {stop} a value of 10000000 characters or items is over "
        "the limit of 100000",
        f"f.yaml:7:24: steps.d.text: {stop} a number of over 4096 bits is too large",
        "f.yaml:10:11: steps.e.text: line 1 of the template: these nested loops run 1000000 "
        "times, over the limit of 100000 steps for one message (loop over fewer items)",
        "f.yaml:10:11: steps.e.text: line 2 of the template: macro 'f' calls itself: a message "
        "stops after 20 nested calls (make sure the calls end, or use a loop)",
        "f.yaml:10:11: steps.e.text: line 3 of the template: loops nested 3 deep: a message "
        "stops after 100000 steps (make sure the lists are short)",
    ]


def test_check_leaves_small_loops_and_arithmetic_alone(tmp_path):
    found = flow_problems(
        tmp_path,
        """
        id: demo
        settings: {locales: [en], default_locale: en}
        steps:
          a:
            kind: say
            text: "{% for a in range(100) %}{% for b in lang %}{{ a * 2 ** 8 }}{% endfor %}{% endfor %}"
        """,
    )
    assert found == []


RUNAWAY_FLOW = f"""
id: runaway
settings: {{locales: [en], default_locale: en}}
steps:
  size: {{kind: set, vars: {{n: "2000"}}}}
  spin: {{kind: say, text: "{NESTED.replace("range(n)", "range(n|int)").replace(".", "")}done"}}
"""
# `n` comes from a variable, so `check` sees only loops nested 3 deep: a warning, and the
# server starts; at run time the loops would take 8 * 10**9 steps.

HELLO_FLOW = """
id: hello
settings: {locales: [en], default_locale: en}
steps:
  name: {kind: ask, text: "Your name?", save_as: name}
  bye: {kind: end, text: "Hello {{ name }}"}
"""


def test_a_runaway_template_ends_its_own_turn_while_the_server_answers_others(tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "hello.yaml").write_text(HELLO_FLOW, encoding="utf-8")
    (flows / "runaway.yaml").write_text(RUNAWAY_FLOW, encoding="utf-8")
    env = {"PALABRE_SIMULATOR": "true", "PALABRE_DISABLE_PLUGINS": "meta_cloud"}
    served = start_serve(tmp_path, env, flows=str(flows), args=("--insecure-dev",))
    # Without the bounds, the runaway turn holds the event loop and every request times out.
    client = httpx.Client(base_url=served.url, timeout=60)

    def say(flow: str, session: str, text: str) -> list[str]:
        body = {"flow": flow, "lang": "en", "session": session, "text": text}
        response = client.post("/web/messages", json=body)
        assert response.status_code == 200, response.text
        return [message["text"] for message in response.json()["messages"]]

    try:
        with ThreadPoolExecutor(3) as pool:
            runaway = pool.submit(say, "runaway", "runaway-session", "hi")
            health = pool.submit(client.get, "/healthz")
            hello = pool.submit(say, "hello", "hello-session", "hi")
            assert runaway.result() == [INTERNAL_ERROR]
            assert health.result().status_code == 200
            assert hello.result() == ["Your name?"]
        assert say("hello", "hello-session", "Ann") == ["Hello Ann"]
    finally:
        client.close()
        err = served.stop()
    assert "steps.spin.text: stopped: " in err, err  # by the step budget, or the deadline
    assert "Traceback" not in err


def test_check_flags_runaway_constants_and_unknown_names_given_as_strings(tmp_path):
    found = flow_problems(
        tmp_path,
        """
        id: demo
        settings: {locales: [en], default_locale: en}
        steps:
          a: {kind: say, text: "{{ '%*s' % (10**8, '') }}"}
          b: {kind: say, text: "{{ '{:>100000000}'.format('') }}"}
          c: {kind: say, text: "{{ 'x'|center(10**6) }}"}
          d: {kind: say, text: "{{ 'a'|fit(10**9) }}"}
          e: {kind: say, text: "{{ lang|map('uper')|list }}{{ lang|select('nosuchtest')|list }}"}
          f: {kind: say, text: "{{ lang|reject('od')|list }}{{ lang|selectattr('x', 'nosuch')|list }}"}
          g: {kind: say, text: "{{ lang|rejectattr('x', 'evn')|list }}"}
          h: {kind: say, text: "{{ lang|map(attribute='x')|select|list }}{{ '{:>4}'.format(lang) }}"}
        """,
    )
    stop = "this would stop the message:"
    limit = "characters or items is over the limit of 100000"
    assert found == [
        f"f.yaml:4:24: steps.a.text: {stop} a format width of 100000000 {limit}",
        f"f.yaml:5:24: steps.b.text: {stop} a format width of 100000000 {limit}",
        f"f.yaml:6:24: steps.c.text: {stop} the width argument of 1000000 {limit}",
        f"f.yaml:7:24: steps.d.text: {stop} an argument of fit of 1000000000 {limit}",
        "f.yaml:8:24: steps.e.text: unknown filter 'uper' (did you mean 'upper'?)",
        "f.yaml:8:24: steps.e.text: unknown test 'nosuchtest' (no test of that name exists)",
        "f.yaml:9:24: steps.f.text: unknown test 'nosuch' (no test of that name exists)",
        "f.yaml:9:24: steps.f.text: unknown test 'od' (did you mean 'odd'?)",
        "f.yaml:10:24: steps.g.text: unknown test 'evn' (did you mean 'even'?)",
    ]


LEAK_FLOW = """
id: leak
settings: {locales: [en], default_locale: en}
steps:
  city: {kind: ask, text: "Which city? (KI or LU)", save_as: city}
  chosen: {kind: say, text: "TEMPLATE"}
"""


@pytest.mark.anyio
@pytest.mark.parametrize(
    "template",
    [
        "{% set names = {'KI': 'Kinshasa'} %}You chose {{ names[city] }}",
        "{{ {'a': 1}[city] }}",
        "{{ [1, 2][city|length] }}",  # a number made from the answer is data too
    ],
)
async def test_a_template_error_never_puts_the_contacts_answer_in_the_logs(
    tmp_path, caplog, template
):
    path = tmp_path / "leak.yaml"
    path.write_text(LEAK_FLOW.replace("TEMPLATE", template), encoding="utf-8")
    settings = Settings(data_dir=tmp_path / "data", secrets={"PALABRE_SECRET": "test-secret"})
    engine = build_engine([path], settings)
    caplog.set_level(logging.DEBUG)
    await engine.handle(Inbound("c1", "hi"))
    reply = await engine.handle(Inbound("c1", "SECRETANSWER"))
    assert [message.text for message in reply.messages] == [INTERNAL_ERROR]
    failed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("turn failed")]
    assert len(failed) == 1
    assert failed[0].endswith(
        ": steps.chosen.text: undefined variable or attribute on line 1 of the template"
    )
    for record in caplog.records:
        text = f"{record.getMessage()} {vars(record)}"
        assert "SECRETANSWER" not in text, text


def test_a_render_paused_past_its_wall_deadline_goes_on_while_its_cpu_time_is_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The wall clock is only a shortcut: once it is past the deadline (the process was
    paused), the thread's CPU time decides, and a render that computed little goes on."""
    with budget(Limits(seconds=5.0)) as render:
        monkeypatch.setattr(bounds, "WALL", lambda: math.inf)
        for _ in range(100):
            render.step()
        render.deadline = bounds.CLOCK()  # its CPU time is now spent
        with pytest.raises(BoundExceeded, match="rendering took longer"):
            render.step()
