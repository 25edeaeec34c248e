"""The contract every hook, action and step kind keeps (datasette's contract tests).

The contract (datasette's contract tests) is read from a plugin manager built by
`make_plugin_manager()`, never by searching test sources for names:
- every hook spec the manager holds (`manager.hook`) has a docstring and a README mention;
- every action the plugins register has a description, and lives in its own module whose
  docstring opens with its name;
- every module of the `palabre` distribution that defines a hook implementation is declared
  in the `palabre` entry-point group (read from the installed distribution's metadata), and
  every declared module is registered by the manager;
- every hook, action and step kind names, in the `TESTED_BY` table, the tests that exercise it.

`TESTED_BY` is written by hand and reviewed like code. A new hook, action or kind fails
`test_every_hook_action_and_kind_names_its_tests` until a row names its tests; so does a stale
row, and a renamed or deleted test, since each named test is looked up by importing its module.
What the table cannot prove is that the named test really exercises the thing: the reviewer
checks that once, when the row is added.

Each check is a function that returns plain-English problems. The `test_the_*_check_*` tests
feed them a scratch plugin manager with an undocumented hook, an undocumented action, an
undeclared plugin and a missing test, so that every contract test is shown able to fail.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import tomllib
from collections.abc import Callable, Iterable, Iterator
from importlib.metadata import distribution
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from palabre import hookspecs
from palabre.actions import Action
from palabre.flow.kinds import KINDS
from palabre.hookspecs import hookimpl, hookspec
from palabre.plugins import collect_actions, make_plugin_manager

ROOT = Path(__file__).parent.parent


# -- contract: the checks ---------------------------------------------------------------


def hook_specs(manager: pluggy.PluginManager) -> dict[str, Callable[..., Any]]:
    """Each hook the manager has a spec for, by name, with the spec's function."""
    callers = vars(manager.hook).items()
    return {name: hook.spec.function for name, hook in callers if hook.spec is not None}


def undocumented_hooks(manager: pluggy.PluginManager, readme: str) -> list[str]:
    """A line for each hook spec with no docstring, or that the README does not mention."""
    specs = sorted(hook_specs(manager).items())
    problems = [f"the hook {name} has no docstring" for name, spec in specs if not getdoc(spec)]
    return problems + [
        f"the README does not mention the hook {n}" for n, _ in specs if n not in readme
    ]


def getdoc(thing: object) -> str:
    """The docstring of `thing`, cleaned, or "" when it has none."""
    return (inspect.getdoc(thing) or "").strip()


def undocumented_actions(manager: pluggy.PluginManager) -> list[str]:
    """A line for each action with no description, or whose own module does not document it."""
    problems = []
    for name, action in sorted(collect_actions(manager).items()):
        module = inspect.getmodule(action.run)
        if not action.description.strip():
            problems.append(f"the action {name} has no description")
        if not getdoc(module).startswith(f"`{name}`"):
            problems.append(
                f"the docstring of {getattr(module, '__name__', module)} should open with `{name}`"
            )
    return problems


def undeclared_plugins(
    manager: pluggy.PluginManager, packages: Iterable[str], declared: dict[str, str]
) -> list[str]:
    """A line for each module that implements hooks but is not declared, or is declared but
    not registered. `declared` maps each entry point's module to its name."""
    plugins = {m.__name__ for p in packages for m in modules_of(p) if implements_hooks(manager, m)}
    registered = {getattr(plugin, "__name__", None) for plugin in manager.get_plugins()}
    return [
        f"{module} implements hooks but is not in the `palabre` entry-point group"
        for module in sorted(plugins - set(declared))
    ] + [
        f"the entry point {name} = {module} is not a registered plugin"
        for module, name in sorted(declared.items())
        if not {module} <= plugins & registered
    ]


def modules_of(package: str) -> Iterator[ModuleType]:
    """The package and every module under it, imported."""
    root = importlib.import_module(package)
    yield root
    for info in pkgutil.walk_packages(root.__path__, f"{package}."):
        if not info.name.startswith("palabre.db.migrations."):  # only alembic runs these
            yield importlib.import_module(info.name)


def implements_hooks(manager: pluggy.PluginManager, module: ModuleType) -> bool:
    """Whether `module` defines a hook implementation itself (not only imports one)."""
    return any(
        manager.parse_hookimpl_opts(module, name) is not None
        and getattr(module, name).__module__ == module.__name__
        for name in dir(module)
    )


def untested(names: Iterable[str], tests: dict[str, tuple[str, ...]], what: str) -> list[str]:
    """A line for each name with no test, each stale entry of `tests`, each unknown test."""
    names, named = set(names), {name for name, found in tests.items() if found}
    return (
        [f"no test is named for the {what} {name}" for name in sorted(names - named)]
        + [f"tests are named for {name}, which is no {what}" for name in sorted(set(tests) - names)]
        + [
            f"{test} (named for the {what} {name}) is not a test"
            for name, found in sorted(tests.items())
            for test in found
            if not is_test(test)
        ]
    )


def is_test(name: str) -> bool:
    """Whether `module::function` names a test function in the tests folder."""
    module, _, function = name.partition("::")
    try:
        found = getattr(importlib.import_module(f"tests.{module}"), function, None)
    except ImportError:
        return False
    return function.startswith("test_") and inspect.isfunction(found)


# -- contract: which tests exercise each hook, action and step kind -----------------------

TESTED_BY = """
hook    register_commands          test_plugins::test_a_plugin_adds_a_command
hook    register_commands          test_dhis2_cli::test_ping_prints_the_version_and_the_user
hook    register_settings          test_plugins::test_plugins_own_settings_sections_and_check_them
hook    check_flow                 test_plugins::test_plugins_own_settings_sections_and_check_them
hook    check_flow                 test_dhis2_settings_check::test_settings_problems_are_located_at_file_line_column
hook    check_settings             test_startup_settings::test_plugins_add_their_lines_through_check_settings
hook    doctor_notes               test_doctor::test_plugins_add_notes_through_doctor_notes_and_notes_are_not_errors
hook    doctor_notes               test_doctor::test_a_sandbox_sender_is_a_note_with_the_join_rules
hook    register_actions           test_plugins::test_two_plugins_may_not_claim_one_action
hook    register_actions           test_engine::test_action_results_and_on_error
hook    register_template_filters  test_plugins::test_third_party_plugins_override_the_trylast_builtins
hook    register_transports        test_plugins::test_third_party_plugins_override_the_trylast_builtins
hook    register_workers           test_plugins::test_workers_run_for_the_life_of_the_server
hook    make_session_store         test_plugins::test_third_party_plugins_override_the_trylast_builtins
hook    make_session_store         test_plugins::test_the_builtin_store_is_sqlite_without_redis_url
hook    make_stores                test_plugins::test_a_plugin_provides_the_engines_stores
hook    make_stores                test_plugins::test_the_builtin_stores_are_the_embedded_database_without_database_url
hook    on_event                   test_entrances::test_events_are_published_after_the_commit_and_a_broken_listener_breaks_nothing
action  registry.remember          test_uic_flow::test_a_returning_person_is_told_their_code_exists
action  qr.code                    test_qr::test_the_action_stores_the_png_for_24_hours_and_returns_its_id
action  dhis2.find                 test_dhis2_find::test_find_on_2_41_sends_org_units_and_reads_tracked_entities_with_a_pager
action  dhis2.register             test_dhis2_register::test_register_creates_one_enrolled_entity_with_a_client_uid
action  dhis2.flag_duplicate       test_dhis2_duplicates::test_flag_duplicate_action
kind    say                        test_engine::test_plurals_follow_babel_rules_and_filters_follow_the_locale
kind    ask                        test_engine::test_a_button_payload_that_is_no_choice_id_falls_back_to_its_text
kind    set                        test_engine::test_plurals_follow_babel_rules_and_filters_follow_the_locale
kind    branch                     test_engine::test_goto_a_step_and_goto_another_flow
kind    action                     test_engine::test_action_results_and_on_error
kind    consent                    test_consent::test_a_consent_step_records_the_answer_in_the_ledger_once
kind    goto                       test_engine::test_goto_a_step_and_goto_another_flow
kind    goto                       test_engine::test_a_goto_loop_is_stopped_and_reported
kind    end                        test_engine::test_sms_text_is_never_html_escaped
kind    handoff                    test_engine::test_handoff_stops_auto_replies_until_stop
"""


def registered_tests(what: str) -> dict[str, tuple[str, ...]]:
    """The tests `TESTED_BY` names for each hook, action or kind (`what`)."""
    rows = [line.split() for line in TESTED_BY.strip().splitlines()]
    names = dict.fromkeys(name for kind, name, _ in rows if kind == what)
    return {name: tuple(t for k, n, t in rows if (k, n) == (what, name)) for name in names}


# -- contract: the real hooks, actions, kinds and plugins keep it --------------------------


def test_every_hook_is_documented_in_its_spec_and_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert undocumented_hooks(make_plugin_manager(), readme) == []


def test_every_action_is_described_and_documented_in_its_own_module():
    assert undocumented_actions(make_plugin_manager()) == []


def test_every_step_kind_is_documented():
    assert [kind for kind, spec in KINDS.items() if not spec.doc.strip()] == []


def test_every_builtin_plugin_is_declared_in_the_entry_point_group():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = [
        Path(p).name for p in pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    ]
    points = distribution("palabre").entry_points.select(group=hookspecs.PROJECT)
    declared = {point.value: point.name for point in points}
    assert undeclared_plugins(make_plugin_manager(), packages, declared) == []


def test_every_hook_action_and_kind_names_its_tests():
    manager = make_plugin_manager()
    assert untested(hook_specs(manager), registered_tests("hook"), "hook") == []
    assert untested(collect_actions(manager), registered_tests("action"), "action") == []
    assert untested(KINDS, registered_tests("kind"), "step kind") == []


# -- contract: each check can fail ---------------------------------------------------------


class Gadgets:
    @hookspec
    def register_gadgets(self):  # a scratch hook with no docstring
        ...


async def run_gadget(arguments, context):
    return None


class Sloppy:
    """A scratch plugin: gadgets, and an action with no description or documentation."""

    @hookimpl
    def register_gadgets(self):
        return []

    @hookimpl
    def register_actions(self):
        return [Action("sloppy.gadget", run_gadget)]


def sloppy_manager() -> pluggy.PluginManager:
    manager = make_plugin_manager(entry_points=False)
    manager.add_hookspecs(Gadgets)
    manager.register(Sloppy())
    return manager


def test_the_hook_check_reports_a_hook_with_no_docstring_or_readme_mention():
    problems = undocumented_hooks(sloppy_manager(), readme="register_actions")
    assert "the hook register_gadgets has no docstring" in problems
    assert "the README does not mention the hook register_gadgets" in problems
    assert "the README does not mention the hook register_actions" not in problems


def test_the_action_check_reports_an_undescribed_undocumented_action():
    assert undocumented_actions(sloppy_manager()) == [
        "the action sloppy.gadget has no description",
        f"the docstring of {__name__} should open with `sloppy.gadget`",
    ]


def test_the_entry_point_check_reports_undeclared_and_unregistered_plugins():
    manager = make_plugin_manager([importlib.import_module("palabre_qr")], entry_points=False)
    declared = {"palabre_dhis2": "dhis2", "palabre_qr": "qr"}
    assert undeclared_plugins(manager, ["palabre", "palabre_dhis2", "palabre_qr"], declared) == [
        "palabre.builtins implements hooks but is not in the `palabre` entry-point group",
        "palabre.events implements hooks but is not in the `palabre` entry-point group",
        "palabre.web.simulator implements hooks but is not in the `palabre` entry-point group",
        "the entry point dhis2 = palabre_dhis2 is not a registered plugin",
    ]


def test_the_test_check_reports_missing_stale_and_unknown_tests():
    tests = {
        "register_actions": ("test_plugins::test_a_renamed_test",),
        "register_gone": ("test_plugin_contract::test_every_step_kind_is_documented",),
        "on_event": ("test_nowhere::test_it",),
        "check_flow": (),
    }
    names = ["register_actions", "on_event", "check_flow", "register_gadgets"]
    assert untested(names, tests, "hook") == [
        "no test is named for the hook check_flow",
        "no test is named for the hook register_gadgets",
        "tests are named for register_gone, which is no hook",
        "test_nowhere::test_it (named for the hook on_event) is not a test",
        "test_plugins::test_a_renamed_test (named for the hook register_actions) is not a test",
    ]
    assert registered_tests("kind")["goto"] == (
        "test_engine::test_goto_a_step_and_goto_another_flow",
        "test_engine::test_a_goto_loop_is_stopped_and_reported",
    )
