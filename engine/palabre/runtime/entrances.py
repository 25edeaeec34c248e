"""The engine's two entrances, in goflow's style: pure functions that return what happened.

    resume(world, session, inbound)          a contact wrote: continue (or begin) their
                                             conversation
    start(world, contact, flow_id, params)   begin a flow the contact did not open (a
                                             notification, a broadcast, an agent)

Neither touches a store or sends anything. Each returns an `Outcome`: the new session,
the outbound messages (each with an id, a channel and an address) and the events. The
engine (palabre.runtime.engine) takes the contact's lease, commits the outcome and hands
the messages to delivery. A turn that fails (a template, an action) leaves the session as
it was and says so politely; the outcome then carries a `turn_failed` event.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from palabre.errors import ActionError, PalabreError, TemplateError
from palabre.i18n import messages as texts
from palabre.i18n.bounds import per_turn
from palabre.runtime.conversation import converse
from palabre.runtime.messages import Event, Inbound, Outbound
from palabre.runtime.turn import Session, Turn
from palabre.runtime.world import World

log = logging.getLogger("palabre.engine")


@dataclass
class Outcome:
    """What one turn did: the session to store (None: none), messages out, events."""

    session: Session | None
    messages: list[Outbound] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def event_names(self) -> list[str]:
        return [event.name for event in self.events]


@dataclass(frozen=True)
class Contact:
    """Who a started flow speaks to: an address, the transport to reach it, a language."""

    address: str
    transport: str = ""
    channel: str = ""
    language: str | None = None


async def resume(
    world: World, session: Session | None, inbound: Inbound, *, broadcasts_withdrawn: bool = False
) -> Outcome:
    """Continue the contact's conversation with `inbound` (or begin one).
    `broadcasts_withdrawn`: the contact's latest word on broadcasts was STOP, so a START
    word gives them back (the engine reads it from the consent ledger)."""
    turn = Turn(world, inbound, session)
    turn.broadcasts_withdrawn = broadcasts_withdrawn
    return await _run(turn, session, converse(turn))


async def start(
    world: World,
    contact: Contact,
    flow_id: str,
    params: Mapping[str, Any] | None = None,
    session: Session | None = None,
    variables: Mapping[str, Any] | None = None,
) -> Outcome:
    """Begin `flow_id` for `contact`, with `params` readable as `params` in its templates
    (and `variables`, such as an outside `event`, under their names).

    A conversation in progress (`session`) is interrupted, and says so in an event, only
    when the started flow waits for an answer: one that ends in its first turn (a notice)
    leaves it as it was, as a broadcast message would, and the contact's next answer goes on
    with it.
    """
    flow = world.flows[flow_id]
    inbound = Inbound(
        contact.address,
        channel=contact.channel,
        transport=contact.transport,
        language=contact.language,
    )
    turn = Turn(world, inbound, None)
    languages = flow.settings.locales
    lang = contact.language if contact.language in languages else flow.settings.default_locale
    started = turn.start(flow, lang, dict(params or {}), dict(variables or {}))
    outcome = await _run(turn, session, started, apologize=False)
    if session is None or outcome.session is session:  # none in progress, or the start failed
        return outcome
    if outcome.session is None:  # a notice: the conversation in progress goes on
        return Outcome(session, outcome.messages, outcome.events)
    interrupted = Event("conversation_interrupted", {"flow": session.get("flow")})
    return Outcome(outcome.session, outcome.messages, [interrupted, *outcome.events])


async def _run(
    turn: Turn, session: Session | None, work: Any, *, apologize: bool = True
) -> Outcome:
    """Run a turn; when it fails, the session stays as it was and, in answer to the
    contact (`apologize`), they are told. A started flow that fails sends nothing: no one
    asked, and its caller hears of it (`turn_failed`)."""
    try:
        with per_turn():  # all of this turn's templates share one time allowance
            await work
    except (TemplateError, ActionError, PalabreError) as exc:
        key = turn.world.contact_key(turn.inbound.contact)
        log.error("turn failed: %s", exc, extra={"contact": key, "flow": turn.flow.id})
        failed = Turn(turn.world, turn.inbound, session)
        if apologize:
            failed.send_plain(texts.INTERNAL_ERROR)
        failed.event("turn_failed", flow=turn.flow.id, error=type(exc).__name__)
        return Outcome(session, failed.reply.messages, failed.reply.events)
    return Outcome(turn.session, turn.reply.messages, turn.reply.events)
