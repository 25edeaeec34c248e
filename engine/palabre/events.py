"""Publishing a turn's events to every plugin's `on_event`, one plugin's failure isolated.

The built-in listener logs each event at INFO with its ids (the contact's keyed hash, the
flow, the transport), so a deployment sees what happened without any personal data.
"""

from __future__ import annotations

import inspect
import logging

import pluggy

from palabre.hookspecs import hookimpl
from palabre.runtime.engine import EventContext, Publish
from palabre.runtime.messages import Event

log = logging.getLogger("palabre.events")


def publisher(manager: pluggy.PluginManager) -> Publish:
    """A `publish(event, context)` that calls each plugin's `on_event` in turn."""

    async def publish(event: Event, context: EventContext) -> None:
        for impl in manager.hook.on_event.get_hookimpls():
            try:
                result = impl.function(event=event, context=context)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # a listener must never undo or stop a conversation
                log.error(
                    "plugin %s failed on event %s: %s",
                    _name(impl.plugin),
                    event.name,
                    type(exc).__name__,
                )

    return publish


def _name(plugin: object) -> str:
    """A module plugin's name, or an object plugin's class."""
    return str(getattr(plugin, "__name__", type(plugin).__name__))


@hookimpl(trylast=True)
def on_event(event: Event, context: EventContext) -> None:
    """Log the event with ids only."""
    log.info(
        "event %s",
        event.name,
        extra={"contact": context.contact_key, "flow": context.flow_id, **_ids(event)},
    )


def _ids(event: Event) -> dict[str, object]:
    # Event data holds ids (step, flow, reason codes), never personal data; keep scalars,
    # prefixed so that no key can clash with a LogRecord attribute such as `name`.
    return {
        f"event_{k}": v for k, v in event.data.items() if isinstance(v, str | int | float | bool)
    }
