"""Plugins: loading, blocking, overriding, commands, settings sections and workers.

The contract every hook, action and kind keeps is in tests/test_plugin_contract.py.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import ClassVar

import pytest

from palabre.actions import Action
from palabre.config import Settings
from palabre.errors import PluginError
from palabre.hookspecs import hookimpl
from palabre.plugins import collect_actions, collect_filters, describe, make_plugin_manager
from palabre.stores.sqlite import SQLiteSessionStore

ROOT = Path(__file__).parent.parent


def test_builtins_load_through_the_entry_point_group():
    manager = make_plugin_manager()
    assert ("builtins", "palabre 0.1.0") in describe(manager)
    assert "registry.remember" in collect_actions(manager)
    assert {"number", "date", "fit"} <= set(collect_filters(manager))


def test_a_plugin_can_be_blocked_by_environment(monkeypatch):
    monkeypatch.setenv("PALABRE_DISABLE_PLUGINS", "builtins")
    assert "registry.remember" not in collect_actions(make_plugin_manager())
    monkeypatch.delenv("PALABRE_DISABLE_PLUGINS")
    assert "registry.remember" in collect_actions(make_plugin_manager())


class Misspelled:
    @hookimpl
    def register_action(self):  # no such hook: the spec is register_actions
        return []


def test_a_hook_with_no_spec_is_refused():
    with pytest.raises(PluginError, match=r"register_action.*check the hook's name"):
        make_plugin_manager([Misspelled()])


class Clash:
    @hookimpl
    def register_actions(self):
        async def run(arguments, context):
            return None

        return [Action("registry.remember", run)]


def test_two_plugins_may_not_claim_one_action():
    with pytest.raises(PluginError, match=r"two plugins register the action 'registry\.remember'"):
        collect_actions(make_plugin_manager([Clash()]))


class Overrides:
    def __init__(self, store, stores=None):
        self.store = store
        self.stores = stores

    @hookimpl
    def make_session_store(self, settings):
        return self.store

    @hookimpl
    def make_stores(self, settings, clock):
        return self.stores

    @hookimpl
    def register_template_filters(self):
        return {"fit": lambda value, width, fill="-": str(value)[:width].ljust(width, fill)}

    @hookimpl
    def register_transports(self):
        return ["a transport"]


def test_third_party_plugins_override_the_trylast_builtins(tmp_path):
    store = SQLiteSessionStore(tmp_path / "mine.db")
    manager = make_plugin_manager([Overrides(store)])
    assert manager.hook.make_session_store(settings=Settings(data_dir=tmp_path)) is store
    assert collect_filters(manager)["fit"]("ab", 3) == "ab-"
    assert ["a transport"] in manager.hook.register_transports()


def test_the_builtin_store_is_sqlite_without_redis_url(tmp_path):
    store = make_plugin_manager().hook.make_session_store(settings=Settings(data_dir=tmp_path))
    assert isinstance(store, SQLiteSessionStore)


def test_the_builtin_stores_are_the_embedded_database_without_database_url(tmp_path):
    settings = Settings(data_dir=tmp_path, secrets={"PALABRE_SECRET": "s"})
    stores = make_plugin_manager().hook.make_stores(settings=settings, clock=time.time)
    assert stores.database.dialect == "sqlite"
    assert stores.database.where == str(tmp_path / "palabre.db")
    asyncio.run(stores.aclose())


def test_a_plugin_provides_the_engines_stores(tmp_path):
    from palabre.bootstrap import build_engine
    from palabre.db.database import Database
    from palabre.stores.bundle import Stores

    mine = Stores.on(Database(f"sqlite+aiosqlite:///{tmp_path}/mine.db"), b"key")
    settings = Settings(data_dir=tmp_path / "data", secrets={"PALABRE_SECRET": "s"})
    manager = make_plugin_manager([Overrides(SQLiteSessionStore(tmp_path / "s.db"), mine)])
    engine = build_engine([ROOT / "flows" / "uic.yaml"], settings, plugins=manager)
    assert engine.stores is mine
    asyncio.run(engine.aclose())


class Extends:
    """A plugin that adds a command, owns a settings section and runs a worker."""

    ran: ClassVar[list[str]] = []

    @hookimpl
    def register_commands(self, commands):
        hello = commands.add_parser("hello", help="say hello")
        hello.set_defaults(run=lambda args: print("hello from a plugin") or 0)

    @hookimpl
    def register_settings(self):
        return ["demo"]

    @hookimpl
    def check_flow(self, flow):
        from palabre.errors import Problem

        demo = flow.settings.extra.get("demo")
        if demo is None or isinstance(demo.get("uid"), str):
            return []
        line, column = flow.locate("settings", "demo", "uid")
        return [Problem(flow.file, line, column, "settings.demo.uid", "uid must be a text")]

    @hookimpl
    def register_workers(self):
        async def work(host):
            Extends.ran.append(type(host).__name__)
            await asyncio.Event().wait()  # runs until cancelled at shutdown

        return [work]


def test_a_plugin_adds_a_command(capsys):
    from palabre.cli import main

    assert main(["hello"], plugins=make_plugin_manager([Extends()])) == 0
    assert capsys.readouterr().out == "hello from a plugin\n"


def test_plugins_own_settings_sections_and_check_them(tmp_path):
    from palabre.bootstrap import Toolkit, load_flows

    flow = tmp_path / "f.yaml"
    flow.write_text(
        "id: f\nsettings:\n  locales: [en]\n  default_locale: en\n"
        "  demo: {uid: 12}\n  dmeo: {}\nsteps: {a: {kind: end}}\n"
    )
    _, problems = load_flows([flow], Toolkit.create(None, make_plugin_manager([Extends()])))
    assert [str(p).replace(f"{tmp_path}/", "") for p in problems] == [
        "f.yaml:5:15: settings.demo.uid: uid must be a text",
        "f.yaml:6:9: settings.dmeo: unknown setting 'dmeo' (did you mean 'demo'?)",
    ]


def test_workers_run_for_the_life_of_the_server(tmp_path, live_server):
    from palabre.web.app import create_app

    Extends.ran.clear()
    settings = Settings(data_dir=tmp_path, secrets={"PALABRE_SECRET": "s"})
    manager = make_plugin_manager([Extends()], disabled=["twilio", "meta_cloud"])
    app = create_app([ROOT / "flows" / "uic.yaml"], settings, plugins=manager)
    with live_server(app):
        deadline = time.monotonic() + 5
        while not Extends.ran and time.monotonic() < deadline:
            time.sleep(0.02)
    assert Extends.ran == ["Host"]
