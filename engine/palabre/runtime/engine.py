"""The engine: one inbound message in, outbound messages and events out.

Apart from the session store and plugin actions it does no I/O: transports deliver what
it returns. For each message it waits for the contact's turn (a lease, in arrival order),
dedupes by provider id, runs one turn on a copy of the session, and commits the new
session together with the message id in one atomic write, fenced by the lease.
Contacts are known to the store and the logs by their keyed hash only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from palabre.actions import Action
from palabre.config import Settings
from palabre.contacts import contact_hasher
from palabre.contacts import contact_key as keyed_hash
from palabre.errors import ActionError, ConfigError, PalabreError, TemplateError
from palabre.flow.model import Flow
from palabre.i18n import messages as texts
from palabre.i18n.bounds import per_turn
from palabre.i18n.language import fold
from palabre.runtime.conversation import converse
from palabre.runtime.messages import Event, Inbound, Reply
from palabre.runtime.speech import Speech
from palabre.runtime.turn import Turn
from palabre.stores.base import SessionStore

if TYPE_CHECKING:
    from palabre.stores.bundle import Stores

log = logging.getLogger("palabre.engine")

# After a flow's `expires_after`, its session is kept this long more, so that a contact who
# comes back is told the conversation expired; then it is deleted, answers and all.
EXPIRY_NOTICE_SECONDS = 3600


class Engine:
    """Runs conversations for a set of flows over a session store."""

    def __init__(
        self,
        flows: Mapping[str, Flow],
        store: SessionStore,
        speech: Speech,
        actions: Mapping[str, Action],
        settings: Settings,
        *,
        stores: Stores | None = None,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not flows:
            raise ConfigError("no flow to run: give at least one flow file")
        self.flows = dict(flows)
        self.store = store
        self.speech = speech
        self.actions = dict(actions)
        self.settings = settings
        self.stores = stores
        self.http = http
        self.clock = clock
        self._secrets = {flow.id: self._secret_for(flow) for flow in self.flows.values()}
        # Folded once here, not for every new conversation.
        self._triggers = {
            flow.id: {fold(word) for words in flow.triggers.values() for word in words}
            for flow in self.flows.values()
        }
        self._default = next((flow for flow in self.flows.values() if flow.default), None)
        self._contact_hasher = contact_hasher(self._deployment_secret())

    @property
    def default_flow(self) -> Flow:
        return self._default or next(iter(self.flows.values()))

    def flow_for(self, text: str) -> Flow | None:
        """The flow a new conversation starts: by trigger word, else the default flow."""
        words = set(fold(text).split())
        for flow_id, triggers in self._triggers.items():
            if triggers & words:
                return self.flows[flow_id]
        if self._default or len(self.flows) == 1:
            return self.default_flow
        return None

    def flow_secret(self, flow: Flow) -> bytes | None:
        return self._secrets.get(flow.id)

    def contact_key(self, contact: str) -> str:
        """The contact's keyed hash, from PALABRE_SECRET alone: the same on every worker,
        after every restart and whatever the flows; safe for logs, keys and actions."""
        return keyed_hash(self._contact_hasher, contact)

    def _deployment_secret(self) -> bytes:
        try:
            return self.settings.secret("PALABRE_SECRET")
        except ConfigError as exc:
            raise ConfigError(f"Palabre cannot start: {exc}") from None

    def session_ttl(self, session: dict[str, Any] | None) -> int | None:
        """How long a session is kept: its flow's expiry plus time for the expiry notice."""
        flow = self.flows.get(session["flow"]) if session else None
        if flow is None:
            return None
        return flow.settings.expires_after + EXPIRY_NOTICE_SECONDS

    async def forget(self, contact: str) -> None:
        """Delete the contact's session (a new conversation starts with the next message)."""
        await self.store.commit(self.contact_key(contact), None)

    def _secret_for(self, flow: Flow) -> bytes | None:
        """The flow's secret when one of its actions needs it; refuses to start without it."""
        needs = [
            s
            for s in flow.steps.values()
            if s.kind == "action"
            and self.actions.get(s.get("action"), None)
            and self.actions[s.get("action")].needs_secret
        ]
        if not needs:
            return None
        name = flow.settings.secret_env
        try:
            return self.settings.secret(name)
        except ConfigError as exc:
            raise ConfigError(f"{flow.file}: flow '{flow.id}' cannot start: {exc}") from None

    async def aclose(self) -> None:
        """Close the session store and the durable stores."""
        await self.store.aclose()
        if self.stores is not None:
            await self.stores.aclose()

    async def handle(self, inbound: Inbound) -> Reply:
        """Process one inbound message. Raises StoreError when the store fails."""
        key = self.contact_key(inbound.contact)
        async with self.store.locked(key) as lease:
            seen, session = await self.store.load(key, inbound.message_id)
            if seen:
                return _duplicate(key)
            reply, new_session = await self._turn(inbound, session, key)
            await self.store.commit(
                key,
                new_session,
                message_id=inbound.message_id,
                lease=lease,
                ttl_seconds=self.session_ttl(new_session),
            )
        log.info("turn done", extra={"contact": key, "events": reply.event_names()})
        return reply

    async def _turn(
        self, inbound: Inbound, session: dict[str, Any] | None, key: str
    ) -> tuple[Reply, dict[str, Any] | None]:
        turn = Turn(self, inbound, session)
        try:
            with per_turn():  # all of this turn's templates share one time allowance
                await converse(turn)
        except (TemplateError, ActionError, PalabreError) as exc:
            log.error("turn failed: %s", exc, extra={"contact": key, "flow": turn.flow.id})
            failed = Turn(self, inbound, session)
            failed.send_plain(texts.INTERNAL_ERROR)
            failed.event("turn_failed", flow=turn.flow.id, error=type(exc).__name__)
            return failed.reply, session
        return turn.reply, turn.session


def _duplicate(key: str) -> Reply:
    log.info("duplicate message ignored", extra={"contact": key})
    return Reply(events=[Event("message_duplicated")])
