"""The hooks a Palabre plugin may implement. This module is their reference documentation.

Hooks that add things are named `register_<things>()` and return lists (or mappings);
every plugin's contribution is collected. Hooks that decide "who handles it" are
`firstresult`: the first plugin to return something other than None wins, and the
built-in defaults are `trylast` so any plugin can override them.

Phases:
1. command line: `register_commands`;
2. checking flows: `register_settings`, `check_flow`;
3. start-up: `check_settings`, `doctor_notes`, `register_actions`,
   `register_template_filters`, `register_transports`, `register_workers`,
   `make_session_store`, `make_stores`;
4. conversation: actions run from flow steps (see `palabre.actions.Action`); `on_event`
   hears what every turn did, after it is committed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import argparse
    from collections.abc import Awaitable, Callable

    from palabre.actions import Action
    from palabre.config import Settings
    from palabre.errors import Problem
    from palabre.flow.model import Flow
    from palabre.runtime.engine import EventContext
    from palabre.runtime.messages import Event
    from palabre.stores.base import SessionStore
    from palabre.stores.bundle import Stores
    from palabre.transports import Host, Transport

PROJECT = "palabre"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- command line -------------------------------------------------------------------


@hookspec
def register_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `palabre` subcommands: `commands.add_parser(...)`, then `set_defaults(run=fn)`.

    `fn(args)` returns the exit status; it may raise a PalabreError, which the CLI prints
    as one clear line.
    """


# -- checking flows -------------------------------------------------------------------


@hookspec
def register_settings() -> list[str]:
    """Return the names of the flow `settings:` sections this plugin reads (e.g. `dhis2`).

    `palabre check` reports any other unknown settings name as a mistake.
    """


@hookspec
def check_flow(flow: Flow) -> list[Problem]:
    """Return problems in the parts of `flow` this plugin owns, located with `flow.where`."""


# -- start-up: what a plugin adds ---------------------------------------------------


@hookspec
def check_settings(settings: Settings) -> list[str]:
    """Return one clear line for each problem in the settings this plugin reads.

    `palabre serve` calls it before starting, with the settings from the environment and
    `.env`, lists every plugin's lines with Palabre's own, and refuses to start (exit
    status 2) when there is any. `settings.dev` is true under `--insecure-dev`, where
    missing credentials may be allowed; malformed ones never are. Never repeat a secret.
    """


@hookspec
def doctor_notes(settings: Settings) -> list[str]:
    """Return lines a person running Palabre should know about these settings, which are
    not errors: a test sender with rules of its own, a feature left off by a missing setting.

    `palabre doctor` calls it with the settings from the environment and `.env` (never in
    dev mode) and prints each line as `note: <line>`, after the errors; notes alone leave
    its exit status 0. A problem that must keep `palabre serve` from starting belongs in
    `check_settings` instead. Say what it means and what to do, in one line; never repeat
    a secret.
    """


@hookspec
def register_actions() -> list[Action]:
    """Return the actions this plugin offers to flows (`kind: action`, `action: <name>`).

    Each action has a dotted name, such as `registry.remember` or `dhis2.find`, and a
    coroutine taking the rendered arguments and an `ActionContext`. Two plugins may not
    register the same name.
    """


@hookspec
def register_template_filters() -> dict[str, Callable[..., Any]]:
    """Return Jinja filters (name to function) available in every message template.

    A filter whose first parameter is marked `@jinja2.pass_context` sees the contact's
    locale as `context["locale"]`.
    """


@hookspec
def register_transports() -> list[Transport]:
    """Return the transports (channels) this plugin provides: SMS, WhatsApp, web...

    A transport (`palabre.transports.Transport`) turns provider webhooks into inbound
    messages and outbound messages into provider API calls. `palabre serve` mounts each
    transport's routes and calls its `startup(host)`, where it may refuse to start
    (for example when its secret is missing and `--insecure-dev` was not given).
    """


@hookspec
def register_workers() -> list[Callable[[Host], Awaitable[None]]]:
    """Return background jobs that `palabre serve` runs for its whole life.

    Each is called once with the `palabre.transports.Host` and should loop until it is
    cancelled at shutdown (retry queues, clean-ups). An exception is logged and the job
    is restarted after a pause.
    """


# -- start-up: who handles it ----------------------------------------------------


@hookspec(firstresult=True)
def make_session_store(settings: Settings) -> SessionStore | None:
    """Return the session store to use for these settings, or None to let another decide.

    The built-in choice is Redis when `REDIS_URL` is set and SQLite otherwise.
    """


@hookspec(firstresult=True)
def make_stores(settings: Settings, clock: Callable[[], float]) -> Stores | None:
    """Return the durable stores (`palabre.stores.bundle.Stores`), or None to let another decide.

    One typed set on one backend: the registry, media, the message log with opt-outs,
    the task queue and contacts, all shared by every worker. `clock` gives the time their
    expiries and timestamps use. The built-in choice is PostgreSQL when `DATABASE_URL` is
    set and the embedded SQLite file `PALABRE_DATA_DIR/palabre.db` otherwise; its schema
    must be at the code's revision (`palabre db upgrade`).
    """


# -- conversation ---------------------------------------------------------------------


@hookspec
def on_event(event: Event, context: EventContext) -> Awaitable[None] | None:
    """Hear an event of a committed turn: `conversation_started`, `answer_rejected`,
    `handoff_requested`, `conversation_stopped`, `turn_failed`... (past tense).

    Called for every plugin, in order, after the turn's session is committed, so what a
    plugin does here never undoes a conversation. May return an awaitable, which is
    awaited. `context` carries ids only (the contact's keyed hash, the flow, the
    transport, the provider message id), never an address or a message body. An exception
    is logged with the plugin's name and does not stop the other plugins.
    """
