"""The hooks a Palabre plugin may implement. This module is their reference documentation.

Hooks that add things are named `register_<things>()` and return lists (or mappings);
every plugin's contribution is collected. Hooks that decide "who handles it" are
`firstresult`: the first plugin to return something other than None wins, and the
built-in defaults are `trylast` so any plugin can override them.

Phases:
1. start-up: `register_actions`, `register_template_filters`, `register_transports`,
   `make_session_store`;
2. conversation: actions run from flow steps (see `palabre.actions.Action`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable

    from palabre.actions import Action
    from palabre.config import Settings
    from palabre.stores.base import SessionStore
    from palabre.transports import Transport

PROJECT = "palabre"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- start-up: what a plugin adds ---------------------------------------------------


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


# -- start-up: who handles it ----------------------------------------------------


@hookspec(firstresult=True)
def make_session_store(settings: Settings) -> SessionStore | None:
    """Return the session store to use for these settings, or None to let another decide.

    The built-in choice is Redis when `REDIS_URL` is set and SQLite otherwise.
    """
