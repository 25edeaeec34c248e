"""Actions: what a flow's `kind: action` step calls. Each action type lives in its own file."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from palabre.config import Settings
    from palabre.stores.bundle import Stores


@dataclass
class ActionContext:
    """What an action may use. It never sees the contact's phone number.

    `contact_key` is a keyed hash of the contact, stable for one deployment; `settings`
    is the flow's `settings:`; `secret` is the flow's secret (bytes) when the action
    declares `needs_secret`. `stores` are the durable stores (registry, media, tasks...)
    and `settings_env` the process settings (from the environment), when the engine has
    them. `idempotency_key` is the same every time this step runs for the same inbound
    message (a provider's redelivery after a crash or a stalled worker), and differs for
    any other message; None when the message has no provider id. An action with side
    effects uses it so that a retried turn finds its own earlier work, not someone else's.
    """

    flow_id: str
    step_id: str
    locale: str
    contact_key: str
    settings: dict[str, Any]
    secret: bytes | None = None
    stores: Stores | None = None
    settings_env: Settings | None = None
    http: httpx.AsyncClient | None = None
    idempotency_key: str | None = None


ActionFunction = Callable[[dict[str, Any], ActionContext], Awaitable[Any]]

# Twilio waits 15 s for a webhook's answer: every action ends well inside that budget.
DEFAULT_DEADLINE_SECONDS = 10.0


@dataclass(frozen=True)
class Action:
    """A named action offered by a plugin.

    `run(arguments, context)` receives the step's `with:` values, rendered, and returns
    the value stored under the step's `save_as`. It raises `palabre.errors.ActionError`
    to take the step's `on_error` exit. The engine cancels it after `deadline` seconds
    (an ActionError too); an action that can finish its work later (a queue) should stop
    itself a little earlier and queue it. When `parameters` names any, `palabre check`
    refuses other `with:` names, and missing `required` ones.
    """

    name: str
    run: ActionFunction
    description: str = ""
    parameters: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    needs_secret: bool = False
    deadline: float = DEFAULT_DEADLINE_SECONDS
