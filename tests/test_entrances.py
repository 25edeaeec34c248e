"""The engine's two entrances (resume, start) and the events they publish to plugins."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from palabre import builtins
from palabre.bootstrap import build_engine
from palabre.config import Settings
from palabre.hookspecs import hookimpl
from palabre.plugins import make_plugin_manager
from palabre.runtime import entrances
from palabre.runtime.engine import EventContext
from palabre.runtime.entrances import Contact
from palabre.runtime.messages import Event, Inbound
from palabre.runtime.world import World

SECRET = {"PALABRE_SECRET": "entrances-test-secret-" + "0" * 32}
ADDRESS = "whatsapp:+243810000021"

TICKET = """\
id: ticket
settings: {locales: [en, fr], default_locale: en}
steps:
  called:
    kind: ask
    text: >-
      Ticket {{ params.number | default('?') }}: it is your turn at desk
      {{ params.desk | default('?') }}. Coming? (yes/no)
    choices: [{id: "yes", title: "Yes"}, {id: "no", title: "No"}]
    save_as: coming
  bye: {kind: end, text: "Thank you, see you at desk {{ params.desk | default('?') }}."}
"""


class Listener:
    """A plugin that hears every event, and can be made to fail."""

    def __init__(self, fail: bool = False) -> None:
        self.heard: list[tuple[str, EventContext]] = []
        self.fail = fail

    @hookimpl
    async def on_event(self, event: Event, context: EventContext) -> None:
        self.heard.append((event.name, context))
        if self.fail:
            raise RuntimeError("this listener is broken")


def engine_with(tmp_path: Path, *listeners: Listener):
    flow = tmp_path / "ticket.yaml"
    flow.write_text(textwrap.dedent(TICKET))
    manager = make_plugin_manager([builtins, *listeners], entry_points=False)
    settings = Settings(data_dir=tmp_path / "data", secrets=SECRET)
    return build_engine([flow], settings, plugins=manager)


@pytest.mark.anyio
async def test_start_sends_a_flow_to_a_contact_who_wrote_nothing(tmp_path):
    listener = Listener()
    engine = engine_with(tmp_path, listener)
    try:
        contact = Contact(ADDRESS, transport="meta_cloud", channel="whatsapp", language="fr")
        reply = await engine.start(contact, "ticket", {"number": "A42", "desk": 3})
        (message,) = reply.messages
        assert message.text.startswith("Ticket A42: it is your turn at desk 3.")
        assert (message.contact, message.transport, message.channel) == (
            ADDRESS,
            "meta_cloud",
            "whatsapp",
        )
        assert len(message.id) == 32 and [o.id for o in message.options] == ["yes", "no"]
        answer = await engine.handle(
            Inbound(ADDRESS, "yes", "whatsapp", message_id="wamid.1", transport="meta_cloud")
        )
        assert [m.text for m in answer.messages] == ["Thank you, see you at desk 3."]
        key = engine.contact_key(ADDRESS)
        assert await engine.store.get(key) is None, "the flow ended"
    finally:
        await engine.aclose()
    names = [name for name, _ in listener.heard]
    assert (
        names[:2] == ["conversation_started", "answer_accepted"] or "conversation_started" in names
    )
    assert all(context.contact_key == key for _, context in listener.heard)
    assert all(ADDRESS not in repr(context) for _, context in listener.heard)


@pytest.mark.anyio
async def test_start_interrupts_a_conversation_in_progress(tmp_path):
    engine = engine_with(tmp_path)
    try:
        contact = Contact(ADDRESS, transport="web", channel="web")
        await engine.start(contact, "ticket", {"number": "A1", "desk": 1})
        again = await engine.start(contact, "ticket", {"number": "A2", "desk": 2})
        assert again.event_names()[0] == "conversation_interrupted"
        assert "A2" in again.messages[0].text
    finally:
        await engine.aclose()


NOTICE = """\
id: notice
settings: {locales: [en], default_locale: en}
steps:
  only: {kind: end, text: "The office closes at noon today."}
"""


@pytest.mark.anyio
async def test_a_notice_leaves_the_conversation_in_progress_as_it_was(tmp_path):
    (tmp_path / "ticket.yaml").write_text(TICKET)
    (tmp_path / "notice.yaml").write_text(NOTICE)
    engine = build_engine(
        [tmp_path / "ticket.yaml", tmp_path / "notice.yaml"],
        Settings(data_dir=tmp_path / "data", secrets=SECRET),
        plugins=make_plugin_manager([builtins], entry_points=False),
    )
    try:
        contact = Contact(ADDRESS, transport="web", channel="web")
        await engine.start(contact, "ticket", {"number": "A1", "desk": 1})  # asks: coming?
        notice = await engine.start(contact, "notice")
        answer = await engine.handle(Inbound(ADDRESS, "yes", "web", message_id="web.1"))
    finally:
        await engine.aclose()
    assert [m.text for m in notice.messages] == ["The office closes at noon today."]
    assert "conversation_interrupted" not in notice.event_names()
    assert [m.text for m in answer.messages] == ["Thank you, see you at desk 1."], (
        "the answer goes on with the ticket's question, asked before the notice"
    )


@pytest.mark.anyio
async def test_events_are_published_after_the_commit_and_a_broken_listener_breaks_nothing(
    tmp_path,
):
    broken, healthy = Listener(fail=True), Listener()
    engine = engine_with(tmp_path, broken, healthy)
    try:
        reply = await engine.handle(Inbound(ADDRESS, "hello", "whatsapp", message_id="wamid.2"))
        assert reply.messages, "the contact is answered although a listener failed"
        session = await engine.store.get(engine.contact_key(ADDRESS))
        assert session is not None and session["step"] == "called"
    finally:
        await engine.aclose()
    assert [name for name, _ in healthy.heard] == reply.event_names()
    assert [name for name, _ in broken.heard] == reply.event_names(), "each event reached it"
    (context,) = {context for _, context in healthy.heard}
    assert context.flow_id == "ticket" and context.message_id == "wamid.2"


@pytest.mark.anyio
async def test_the_entrances_are_pure_and_need_no_store(tmp_path):
    engine = engine_with(tmp_path)
    world = World(
        engine.flows, engine.speech, engine.actions, engine.settings, clock=lambda: 1000.0
    )
    try:
        assert not hasattr(world, "store"), "a turn cannot reach the session store"
        contact = Contact(ADDRESS, transport="web", channel="web", language="en")
        started = await entrances.start(world, contact, "ticket", {"number": "B7", "desk": 9})
        assert started.session is not None and started.session["vars"]["params"]["desk"] == 9
        resumed = await entrances.resume(world, started.session, Inbound(ADDRESS, "no", "web"))
        assert resumed.session is None and resumed.event_names()[-1] == "flow_completed"
        assert started.session["step"] == "called", "the input session is not changed"
        assert await engine.store.get(engine.contact_key(ADDRESS)) is None, "nothing stored"
    finally:
        await engine.aclose()


def test_palabre_start_queues_the_first_message_in_the_outbox(tmp_path):
    import subprocess
    import sys

    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "ticket.yaml").write_text(textwrap.dedent(TICKET))
    env = {
        "PATH": "/usr/bin:/bin",
        "PALABRE_SECRET": SECRET["PALABRE_SECRET"],
        "PALABRE_DATA_DIR": str(tmp_path / "data"),
        "PALABRE_DEFAULT_REGION": "CD",
    }
    command = [sys.executable, "-m", "palabre.cli", "start", "ticket", "--to", "0812345678"]
    command += ["--param", "number=A9", "--param", "desk=4", "--transport", "twilio"]
    command += ["--flows", str(flows), "--id", "ticket-A9"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("queued ") and "0812345678" not in first.stdout
    listing = subprocess.run(
        [sys.executable, "-m", "palabre.cli", "messages"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert listing.returncode == 0, listing.stderr
    (uid,) = [line.split()[1] for line in first.stdout.splitlines()]
    assert uid in listing.stdout and "queued" in listing.stdout
