"""The world a turn runs in: flows, texts, actions, the clock and contact keys.

A turn (palabre.runtime.turn) sees only this, never the session store or the engine that
applies its outcome, so the runtime has no cycle: entrances return what happened, and
the engine (palabre.runtime.engine) commits and delivers it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

import httpx

from palabre.actions import Action
from palabre.config import Settings
from palabre.contacts import contact_hasher
from palabre.contacts import contact_key as keyed_hash
from palabre.errors import ConfigError
from palabre.flow.model import Flow
from palabre.i18n.language import fold
from palabre.runtime.keywords import Keyword, keyword_table
from palabre.runtime.speech import Speech

MAX_KEYWORD = 64  # characters: a longer message is never a keyword, and is not folded for it

if TYPE_CHECKING:
    from palabre.stores.bundle import Stores

# After a flow's `expires_after`, its session is kept this long more, so that a contact who
# comes back is told the conversation expired; then it is deleted, answers and all.
EXPIRY_NOTICE_SECONDS = 3600


class World:
    """What a turn may use: flows, texts, actions, the clock, contact keys, durable stores
    for actions. It holds no session store and sends nothing (goflow's environment)."""

    def __init__(
        self,
        flows: Mapping[str, Flow],
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
        self._by_event: dict[str, list[str]] = {}
        for flow in sorted(self.flows.values(), key=lambda flow: flow.id):
            for event in flow.events:
                self._by_event.setdefault(event, []).append(flow.id)
        self._default = next((flow for flow in self.flows.values() if flow.default), None)
        languages = {lang for flow in self.flows.values() for lang in flow.settings.locales}
        self._keywords = keyword_table(speech, sorted(languages))
        hasher = contact_hasher(self._deployment_secret())
        # A message asks for its contact's key several times (transport, engine, outbox).
        self._contact_keys = lru_cache(maxsize=4096)(partial(keyed_hash, hasher))

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

    def flows_for_event(self, event: str) -> list[str]:
        """The flows an outside event starts (`triggers: {event: ...}`), by id."""
        return list(self._by_event.get(event, ()))

    def consent_keyword(self, text: str) -> Keyword | None:
        """STOP or START (palabre.runtime.keywords) when `text` is one of their words."""
        return self._keywords.get(fold(text)) if len(text) <= MAX_KEYWORD else None

    def flow_secret(self, flow: Flow) -> bytes | None:
        return self._secrets.get(flow.id)

    def contact_key(self, contact: str) -> str:
        """The contact's keyed hash, from PALABRE_SECRET alone: the same on every worker,
        after every restart and whatever the flows; safe for logs, keys and actions."""
        key: str = self._contact_keys(contact)
        return key

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
