"""One turn of a conversation: an inbound message in, a session and a reply out.

The turn works on a copy of the session; the engine commits that copy only when the
whole turn succeeded, so a failure leaves the stored conversation exactly as it was.
"""

from __future__ import annotations

import asyncio
import copy
from typing import TYPE_CHECKING, Any

from palabre.actions import ActionContext
from palabre.errors import ActionError
from palabre.flow.model import Flow, Step
from palabre.i18n import messages as texts
from palabre.i18n.language import LANGUAGE_NAMES
from palabre.runtime.messages import Event, Inbound, Option, Outbound, Reply
from palabre.runtime.steps import run_from
from palabre.stores.base import message_key

if TYPE_CHECKING:
    from palabre.runtime.world import World

Session = dict[str, Any]


class Turn:
    """The state of one turn; step functions and command handlers act through it."""

    def __init__(self, world: World, inbound: Inbound, session: Session | None) -> None:
        self.world = world
        self.inbound = inbound
        self.session: Session | None = _copied(session)
        self.reply = Reply()
        self.waiting = False
        self.broadcasts_withdrawn = False  # set by the engine when the message may be START
        flow = world.flows.get(session["flow"]) if session else None
        if session and (flow is None or session.get("step") not in flow.steps):
            # The flow was edited or removed since this session was saved: start afresh.
            self.session, flow = None, None
            self.event("session_outdated")
        self.flow: Flow = flow or world.default_flow

    # -- where we are ---------------------------------------------------------------

    @property
    def lang(self) -> str:
        if self.session:
            return str(self.session["lang"])
        return self.inbound.language or self.flow.settings.default_locale

    @property
    def step(self) -> Step:
        assert self.session is not None
        return self.flow.steps[self.session["step"]]

    def where(self, step: Step) -> str:
        return f"{self.flow.file}:{step.where[0]}: steps.{step.id}"

    def variables(self) -> dict[str, Any]:
        stored = self.session["vars"] if self.session else {}
        builtins = {"lang": self.lang, "locale": self.lang, "flow": self.flow.id}
        return {"params": {}, "event": {}, **stored, **builtins}

    def variables_set(self, name: str, value: Any) -> None:
        assert self.session is not None
        self.session["vars"][name] = value

    # -- starting and ending ------------------------------------------------------------

    async def start(
        self,
        flow: Flow,
        lang: str,
        params: dict[str, Any] | None = None,
        variables: dict[str, Any] | None = None,
    ) -> None:
        """Start `flow` from its first step; the message that started it is not an answer.

        `params` (from whoever started the flow) are readable as `params` in templates;
        `variables` (an outside event: `event`) under their own names.
        """
        self.flow = flow
        self.session = {
            "flow": flow.id,
            "step": flow.start,
            "lang": lang,
            "vars": {**({"params": params} if params else {}), **(variables or {})},
            "tries": 0,
            "state": "ask",
            "at": self.world.clock(),
        }
        self.event("conversation_started", flow=flow.id, lang=lang)
        await run_from(self, flow.start)

    def switch_flow(self, flow_id: str) -> str:
        assert self.session is not None
        self.flow = self.world.flows[flow_id]
        self.session.update(flow=flow_id, vars={}, tries=0)
        self.event("flow_switched", flow=flow_id)
        return self.flow.start

    def finish(self, event: str) -> None:
        self.event(event, flow=self.flow.id)
        self.session = None

    # -- output -------------------------------------------------------------------------

    def event(self, name: str, **data: Any) -> None:
        self.reply.events.append(Event(name, data))

    def send(
        self,
        text: str,
        options: tuple[Option, ...] = (),
        image: str | None = None,
        template: dict[str, Any] | None = None,
        ttl: int | None = None,
    ) -> None:
        inbound = self.inbound
        message = Outbound(
            inbound.contact,
            text,
            self.lang,
            options,
            image or None,
            channel=inbound.channel,
            transport=inbound.transport,
            template=template,
            ttl=ttl,
        )
        self.reply.messages.append(message)

    def send_plain(self, msgid: str) -> None:
        self.send(self.world.speech.plain(msgid, self.lang))

    def text_of(self, step: Step, field: str) -> str:
        where = f"{self.where(step)}.{field}"
        return self.world.speech.say(step.get(field), self.lang, self.variables(), where)

    def send_text(self, step: Step, field: str) -> None:
        image = step.get("image")
        media = self.render(image, f"{self.where(step)}.image").strip() if image else None
        template, ttl = self.template_of(step), step.get("ttl")
        self.send(self.text_of(step, field), image=media, template=template, ttl=ttl)

    def template_of(self, step: Step) -> dict[str, Any] | None:
        """The step's approved template, its parameters rendered like any text; a Twilio
        `content_sid` given per language is the contact's language's (else the flow's
        default language's)."""
        declared = step.get("template")
        if not declared or self.inbound.channel != "whatsapp":  # SMS has no window
            return None
        template = self._rendered(declared, f"{self.where(step)}.template")
        twilio = template.get("twilio") if isinstance(template, dict) else None
        if isinstance(twilio, dict) and isinstance(twilio.get("content_sid"), dict):
            sids = twilio["content_sid"]
            chosen = sids.get(self.lang) or sids.get(self.flow.settings.default_locale)
            template["twilio"] = {**twilio, "content_sid": chosen}
        return template

    def _rendered(self, value: Any, where: str) -> Any:
        if isinstance(value, str):
            return self.render(value, where)
        if isinstance(value, dict):
            return {k: self._rendered(v, f"{where}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self._rendered(v, f"{where}[{n}]") for n, v in enumerate(value)]
        return value

    def ask(self, step: Step, prefix: str = "", field: str = "text") -> None:
        """Put the question of `step` (with its choices), optionally after `prefix`."""
        assert self.session is not None
        text = self.text_of(step, field)
        options = self.world.speech.options(
            step.get("choices", []), self.lang, self.variables(), f"{self.where(step)}.choices"
        )
        text = f"{prefix}\n{text}" if prefix else text
        self.send(text, options, template=self.template_of(step), ttl=step.get("ttl"))
        self.session.update(step=step.id, state="ask")
        self.waiting = True

    def ask_language(self) -> None:
        assert self.session is not None
        options = tuple(Option(code, LANGUAGE_NAMES[code]) for code in self.flow.settings.locales)
        self.send(self.world.speech.plain(texts.CHOOSE_LANGUAGE, self.lang), options)
        self.session["state"] = "language"
        self.waiting = True

    # -- templates and actions ------------------------------------------------------

    def render(self, source: str, where: str) -> str:
        return self.world.speech.templates.render(source, self.variables(), where=where)

    def evaluate(self, expression: str, where: str) -> Any:
        return self.world.speech.templates.evaluate(expression, self.variables(), where=where)

    def _idempotency_key(self, step: Step) -> str | None:
        message_id = self.inbound.message_id
        if not message_id:
            return None
        return f"{message_key(message_id)}:{self.flow.id}:{step.id}"

    async def call_action(self, step: Step) -> Any:
        name = step.get("action")
        action = self.world.actions[name]
        arguments = {
            key: self.render(str(value), f"{self.where(step)}.with.{key}")
            for key, value in step.get("with", {}).items()
        }
        missing = [p for p in action.required if p not in arguments]
        if missing:
            raise ActionError(f"{self.where(step)}: {name} needs {', '.join(missing)}")
        context = ActionContext(
            flow_id=self.flow.id,
            step_id=step.id,
            locale=self.lang,
            contact_key=self.world.contact_key(self.inbound.contact),
            settings=self.flow.settings.extra,
            secret=self.world.flow_secret(self.flow) if action.needs_secret else None,
            stores=self.world.stores,
            settings_env=self.world.settings,
            http=self.world.http,
            idempotency_key=self._idempotency_key(step),
        )
        try:
            async with asyncio.timeout(action.deadline):
                return await action.run(arguments, context)
        except TimeoutError:
            raise ActionError(
                f"{self.where(step)}: {name} did not finish within its {action.deadline:g} s "
                "deadline; it was stopped so that the contact's turn ends in time"
            ) from None


def _copied(value: Any) -> Any:
    """A deep copy of a session: JSON values (dicts, lists, scalars) copied by hand, at a
    fifth of `copy.deepcopy`'s cost; anything else by deepcopy."""
    kind = type(value)
    if kind is dict:
        return {key: _copied(item) for key, item in value.items()}
    if kind is list:
        return [_copied(item) for item in value]
    if kind in _SCALARS:
        return value
    return copy.deepcopy(value)


_SCALARS = frozenset({str, int, float, bool, type(None)})
