"""The runtime: dedupe, ordering, failures that leave nothing half-written, handoff, actions."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from palabre.actions import Action
from palabre.bootstrap import build_engine
from palabre.config import Settings
from palabre.errors import ActionError, StoreError, StoreUnavailable
from palabre.hookspecs import hookimpl
from palabre.plugins import make_plugin_manager
from palabre.runtime.engine import EXPIRY_NOTICE_SECONDS
from palabre.runtime.messages import Inbound
from palabre.stores.redis import RedisSessionStore
from palabre.stores.sqlite import SQLiteSessionStore

UIC = Path(__file__).parent.parent / "flows" / "uic.yaml"
SECRET = {"PALABRE_SECRET": "test-secret"}


def flow_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "flow.yaml"
    body = "settings: {locales: [en], default_locale: en}\n" + textwrap.dedent(text).lstrip()
    path.write_text(body, encoding="utf-8")
    return path


def engine_for(paths, tmp_path: Path, **options):
    settings = Settings(data_dir=tmp_path / "data", secrets=SECRET)
    return build_engine(paths, settings, **options)


def texts(reply) -> list[str]:
    return [message.text for message in reply.messages]


@pytest.fixture
def uic(tmp_path):
    return engine_for([UIC], tmp_path)


@pytest.mark.anyio
async def test_the_same_provider_message_id_is_processed_once(uic):
    first = await uic.handle(Inbound("+243810000001", "Bonjour", message_id="SM1"))
    again = await uic.handle(Inbound("+243810000001", "Bonjour", message_id="SM1"))
    assert len(first.messages) == 2
    assert again.messages == []
    assert again.event_names() == ["message_duplicated"]


@pytest.mark.anyio
async def test_concurrent_duplicates_are_processed_once(uic):
    replies = await asyncio.gather(
        *(uic.handle(Inbound("+243810000001", "Bonjour", message_id="SM9")) for _ in range(5))
    )
    assert sorted(len(r.messages) for r in replies) == [0, 0, 0, 0, 2]


@pytest.mark.anyio
async def test_messages_sent_together_are_answered_one_after_the_other(uic):
    contact = "+243810000001"
    script = ["Bonjour", "Mbengue", "Ibrahima", "1997", "DA", "1"]
    # Sent in order, at once: the contact lock serialises them.
    tasks = []
    for i, text in enumerate(script):
        tasks.append(asyncio.create_task(uic.handle(Inbound(contact, text, message_id=f"m{i}"))))
        await asyncio.sleep(0)
    replies = await asyncio.gather(*tasks)
    assert "MBEIBR7DA1" in texts(replies[-1])[-1]


class BrokenStore(SQLiteSessionStore):
    """A real SQLite store whose commits fail, as when the disk or Redis goes away."""

    async def commit(self, contact, session, **options):
        raise StoreUnavailable("the store is down")


@pytest.mark.anyio
async def test_a_store_failure_surfaces_and_leaves_the_session_untouched(tmp_path):
    store = BrokenStore(tmp_path / "s.db")
    engine = engine_for([UIC], tmp_path, store=store)
    key = engine.contact_key("+243810000001")
    await SQLiteSessionStore.commit(
        store,
        key,
        {
            "flow": "uic",
            "step": "first_name",
            "lang": "fr",
            "vars": {"last3": "MBE"},
            "tries": 0,
            "state": "ask",
            "at": 0.0 + 10**10,
        },
    )
    with pytest.raises(StoreError, match="the store is down"):
        await engine.handle(Inbound("+243810000001", "Ibrahima", message_id="SM2"))
    session = await store.get(key)
    assert session["step"] == "first_name"
    assert session["vars"] == {"last3": "MBE"}
    assert not await store.seen("SM2"), "a failed message must be retried, not marked seen"


@pytest.mark.anyio
async def test_an_undefined_variable_is_reported_and_the_contact_gets_a_polite_message(tmp_path):
    path = flow_file(
        tmp_path,
        """
        id: demo
        steps:
          q: {kind: ask, text: "Name?", save_as: name}
          hello: {kind: say, text: "Hello {{ name.first }}"}
    """,
    )
    engine = engine_for([path], tmp_path)
    await engine.handle(Inbound("c1", "hi"))
    reply = await engine.handle(Inbound("c1", "Ada"))
    assert texts(reply) == ["Sorry, something went wrong on our side. Please try again later."]
    assert reply.event_names() == ["turn_failed"]
    session = await engine.store.get(engine.contact_key("c1"))
    assert session["step"] == "q", "the failed turn must not move the conversation"


@pytest.mark.anyio
async def test_handoff_stops_auto_replies_until_stop(tmp_path):
    path = flow_file(
        tmp_path,
        """
        id: demo
        steps:
          agent: {kind: handoff, text: "Connecting you to an agent.", queue: orders}
    """,
    )
    engine = engine_for([path], tmp_path)
    first = await engine.handle(Inbound("c1", "hi"))
    assert texts(first) == ["Connecting you to an agent."]
    assert first.events[-1].data == {"queue": "orders", "step": "agent"}
    during = await engine.handle(Inbound("c1", "where is my parcel?"))
    assert during.messages == []
    assert during.event_names() == ["handoff_message_received"]
    stopped = await engine.handle(Inbound("c1", "stop"))
    assert "conversation_stopped" in stopped.event_names()


class Failing:
    """A plugin whose action fails, to exercise on_error."""

    @hookimpl
    def register_actions(self):
        async def fail(arguments, context):
            raise ActionError("backend down", user_message="Our system is busy.")

        async def echo(arguments, context):
            return {"said": arguments["text"], "locale": context.locale}

        return [Action("test.fail", fail), Action("test.echo", echo, required=("text",))]


@pytest.mark.anyio
async def test_action_results_and_on_error(tmp_path):
    path = flow_file(
        tmp_path,
        """
        id: demo
        steps:
          echo: {kind: action, action: test.echo, with: {text: "hi {{ lang }}"}, save_as: r}
          show: {kind: say, text: "{{ r.said }} / {{ r.locale }}"}
          call: {kind: action, action: test.fail, on_error: sorry}
          never: {kind: say, text: "not reached"}
          sorry: {kind: end, text: "We will retry later."}
    """,
    )
    engine = engine_for([path], tmp_path, plugins=make_plugin_manager([Failing()]))
    reply = await engine.handle(Inbound("c1", "hello"))
    assert texts(reply) == ["hi en / en", "Our system is busy.", "We will retry later."]
    assert "action_failed" in reply.event_names()


@pytest.mark.anyio
async def test_plurals_follow_babel_rules_and_filters_follow_the_locale(tmp_path):
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po
    from tests.test_plurals import FRENCH, msgstrs

    locales = tmp_path / "locales"
    catalog = Catalog(locale="fr")
    # One msgstr per French plural category, laid out by babel's current rule.
    catalog.add(("{{ n }} try left", "{{ n }} tries left"), msgstrs("fr", FRENCH))
    (locales / "fr" / "LC_MESSAGES").mkdir(parents=True)
    with (locales / "fr" / "LC_MESSAGES" / "messages.po").open("wb") as handle:
        write_po(handle, catalog)
    path = flow_file(
        tmp_path,
        """
        id: demo
        steps:
          count: {kind: set, vars: {n: "2", big: "1234567.5"}}
          left: {kind: say, text: {one: "{{ n }} try left", other: "{{ n }} tries left", count: "n | int"}}
          total: {kind: say, text: "{{ big | float | number }}"}
    """,
    )
    path.write_text(
        path.read_text().replace(
            "locales: [en], default_locale: en", "locales: [en, fr], default_locale: fr"
        )
    )
    settings = Settings(data_dir=tmp_path / "d", locales_dir=locales, secrets=SECRET)
    engine = build_engine([path], settings)
    reply = await engine.handle(Inbound("c1", "bonjour", language="fr"))
    assert texts(reply) == ["2 essais restants", "1\u202f234\u202f567,5"]
    reply = await engine.handle(Inbound("c2", "hello", language="en"))
    assert texts(reply) == ["2 tries left", "1,234,567.5"]


@pytest.mark.anyio
async def test_a_uic_conversation_on_real_redis_keeps_no_number_and_follows_the_flow_expiry(
    tmp_path, redis_url
):
    import redis.asyncio as redis

    store = RedisSessionStore(redis_url)
    engine = engine_for([UIC], tmp_path, store=store)
    for i, text in enumerate(["Bonjour", "Mbengue", "Ibrahima"]):
        await engine.handle(Inbound("whatsapp:+243810000001", text, message_id=f"SM{i}"))
    client = redis.from_url(redis_url)
    keys = [key async for key in client.scan_iter("*")]
    assert keys, "the conversation should have stored its session"
    for key in keys:
        assert b"243810000001" not in key and b"SM" not in key, f"{key!r} names the contact"
        ttl = await client.ttl(key)
        assert 0 < ttl <= 72 * 3600, f"{key!r} has TTL {ttl}"
    (session_key,) = [key for key in keys if b":session:" in key]
    # flows/uic.yaml says expires_after: 1h; the partial answers outlive it by the notice room
    assert 3600 < await client.ttl(session_key) <= 3600 + EXPIRY_NOTICE_SECONDS
    raw = await client.get(session_key)
    assert b"243810000001" not in raw
    session = await store.get(engine.contact_key("whatsapp:+243810000001"))
    assert session["step"] == "birth_year"
    await client.aclose()
    await engine.aclose()


@pytest.mark.anyio
async def test_goto_a_step_and_goto_another_flow(tmp_path):
    menu = tmp_path / "menu.yaml"
    menu.write_text(
        textwrap.dedent("""
        id: menu
        settings: {locales: [en], default_locale: en}
        triggers: {default: true}
        steps:
          pick: {kind: ask, text: "1 track, 2 again", save_as: choice, choices: [{id: track, title: Track}, {id: again, title: Again}]}
          route: {kind: branch, cases: [{when: "choice == 'track'", next: to_track}], else: loop}
          loop: {kind: goto, step: pick}
          to_track: {kind: goto, flow: track}
    """)
    )
    track = tmp_path / "track.yaml"
    track.write_text(
        textwrap.dedent("""
        id: track
        settings: {locales: [en], default_locale: en}
        triggers: {en: [track]}
        steps:
          number: {kind: ask, text: "Order number?", save_as: order, validate: {digits: true}}
          done: {kind: end, text: "Order {{ order }} is on its way."}
    """)
    )
    engine = engine_for([menu, track], tmp_path)
    assert texts(await engine.handle(Inbound("c1", "hello"))) == ["1 track, 2 again"]
    assert texts(await engine.handle(Inbound("c1", "2"))) == ["1 track, 2 again"]
    switched = await engine.handle(Inbound("c1", "Track"))
    assert texts(switched) == ["Order number?"]
    assert "flow_switched" in switched.event_names()
    assert texts(await engine.handle(Inbound("c1", "42"))) == ["Order 42 is on its way."]
    # A trigger word starts its flow directly.
    assert texts(await engine.handle(Inbound("c2", "track"))) == ["Order number?"]


@pytest.mark.anyio
async def test_a_goto_loop_is_stopped_and_reported(tmp_path):
    path = flow_file(
        tmp_path,
        """
        id: demo
        steps:
          a: {kind: goto, step: b}
          b: {kind: goto, step: a}
    """,
    )
    engine = engine_for([path], tmp_path)
    reply = await engine.handle(Inbound("c1", "hi"))
    assert texts(reply) == ["Sorry, something went wrong on our side. Please try again later."]
    assert reply.events[-1].data["error"] == "FlowLoopError"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "template",
    [
        "{{ lang.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ lang.upper.__self__ }}",
        "{% for c in ''.__class__.__subclasses__() %}{{ c }}{% endfor %}",
    ],
)
async def test_templates_cannot_reach_python_internals(tmp_path, template):
    path = flow_file(
        tmp_path,
        f"""
        id: demo
        steps:
          a: {{kind: say, text: "{template}"}}
    """,
    )
    engine = engine_for([path], tmp_path)
    reply = await engine.handle(Inbound("c1", "hi"))
    assert texts(reply) == ["Sorry, something went wrong on our side. Please try again later."]
    assert reply.event_names() == ["turn_failed"]


@pytest.mark.anyio
async def test_sms_text_is_never_html_escaped(tmp_path):
    path = flow_file(
        tmp_path,
        """
        id: demo
        steps:
          q: {kind: ask, text: "Name?", save_as: name}
          a: {kind: end, text: "Tom & Jerry <{{ name }}> \\"quoted\\""}
    """,
    )
    engine = engine_for([path], tmp_path)
    await engine.handle(Inbound("c1", "hi"))
    reply = await engine.handle(Inbound("c1", "O'Brien & <b>"))
    assert texts(reply) == ['Tom & Jerry <O\'Brien & <b>> "quoted"']


@pytest.mark.anyio
async def test_a_channel_may_ask_for_a_flow(tmp_path):
    one = flow_file(
        tmp_path,
        """
        id: one
        triggers: {default: true}
        steps:
          a: {kind: end, text: "flow one"}
    """,
    )
    two = tmp_path / "two.yaml"
    two.write_text(
        "id: two\nsettings: {locales: [en], default_locale: en}\n"
        "steps:\n  a: {kind: end, text: flow two}\n"
    )
    engine = engine_for([one, two], tmp_path)
    assert texts(await engine.handle(Inbound("c1", "hi"))) == ["flow one"]
    assert texts(await engine.handle(Inbound("c2", "hi", flow="two"))) == ["flow two"]
    assert texts(await engine.handle(Inbound("c3", "hi", flow="nope"))) == ["flow one"]


@pytest.mark.anyio
async def test_a_button_payload_that_is_no_choice_id_falls_back_to_its_text(tmp_path):
    path = flow_file(
        tmp_path,
        """
        id: demo
        steps:
          q: {kind: ask, text: "OK?", save_as: ok, choices: [{id: y, title: "Yes"}, {id: n, title: "No"}]}
          a: {kind: end, text: "got {{ ok }}"}
    """,
    )
    engine = engine_for([path], tmp_path)
    await engine.handle(Inbound("c1", "hi"))
    reply = await engine.handle(Inbound("c1", "No", reply_id="TEMPLATE_PAYLOAD_42"))
    assert texts(reply) == ["got n"]
    await engine.handle(Inbound("c2", "hi"))
    refused = await engine.handle(Inbound("c2", "", reply_id="TEMPLATE_PAYLOAD_42"))
    assert "answer_rejected" in refused.event_names()


@pytest.mark.anyio
async def test_a_session_saved_by_an_older_version_of_the_flow_starts_afresh(tmp_path):
    path = flow_file(
        tmp_path,
        """
        id: demo
        steps:
          q: {kind: ask, text: "Name?", save_as: name}
          a: {kind: end, text: "Bye {{ name }}"}
    """,
    )
    engine = engine_for([path], tmp_path)
    for contact, saved in (
        ("c1", {"flow": "gone", "step": "x"}),
        ("c2", {"flow": "demo", "step": "renamed"}),
    ):
        await engine.store.commit(
            engine.contact_key(contact),
            {**saved, "lang": "en", "vars": {}, "tries": 0, "state": "ask", "at": 10.0**10},
        )
        reply = await engine.handle(Inbound(contact, "hello"))
        assert texts(reply) == ["Name?"]
        assert reply.event_names()[:2] == ["session_outdated", "conversation_started"]


@pytest.mark.anyio
async def test_a_language_is_chosen_by_its_number_in_any_script(tmp_path):
    path = flow_file(
        tmp_path,
        """
        id: demo
        steps:
          q: {kind: ask, text: "Name?", save_as: name}
    """,
    )
    path.write_text(path.read_text().replace("locales: [en]", "locales: [en, fr]"))
    engine = engine_for([path], tmp_path)
    try:
        await engine.handle(Inbound("c1", "hi", language="en"))
        assert (
            (await engine.handle(Inbound("c1", "language"))).event_names()[0].startswith("command_")
        )
        for odd in ("²", "0²", "9" * 5000, "0"):
            reply = await engine.handle(Inbound("c1", odd))
            assert reply.event_names() == [], f"{odd!r} picks nothing; the question is asked again"
        chosen = await engine.handle(Inbound("c1", "٢"))
        assert chosen.event_names() == ["language_changed"]
        session = await engine.store.get(engine.contact_key("c1"))
        assert session["lang"] == "fr"
    finally:
        await engine.aclose()
