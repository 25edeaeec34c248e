"""What a message means in its conversation: a start, a command, an answer, or chatter.

`converse(turn)` is the single entry: it decides, in this order, whether the message is
STOP (or START from a contact who had stopped: palabre.runtime.keywords), whether the
session expired, whether the message is a global command, and otherwise treats it as the
answer to the current question.
"""

from __future__ import annotations

from dataclasses import replace

from palabre.flow.answers import ascii_digits
from palabre.i18n import messages as texts
from palabre.i18n.language import detect
from palabre.purposes import BROADCAST
from palabre.runtime.answer import read_answer
from palabre.runtime.commands import Command, parse_command, parse_language
from palabre.runtime.keywords import START, STOP, Keyword
from palabre.runtime.steps import run_from
from palabre.runtime.turn import Turn

DEFAULT_MAX_RETRIES = 3


async def converse(turn: Turn) -> None:
    """Handle `turn.inbound` against `turn.session`, filling `turn.reply`."""
    keyword = turn.world.consent_keyword(turn.inbound.text)
    if keyword and keyword.kind == STOP:
        _stopped(turn, keyword)
        return
    if keyword and keyword.kind == START and turn.broadcasts_withdrawn:
        _restarted(turn, keyword)
        return
    session = turn.session
    command = parse_command(turn.inbound.text)
    if session and turn.world.clock() - session["at"] > turn.flow.settings.expires_after:
        await _expired(turn)
    elif session is None:
        await _new_conversation(turn, command)
    elif session["state"] == "handoff":
        _during_handoff(turn)
    elif session["state"] == "language":
        await _language_chosen(turn)
    elif command:
        await _command(turn, command)
    else:
        await _answer(turn)
    if turn.session is not None:
        turn.session["at"] = turn.world.clock()


async def _expired(turn: Turn) -> None:
    assert turn.session is not None
    lang, flow = turn.session["lang"], turn.flow
    turn.event("session_expired", flow=flow.id, step=turn.session["step"])
    turn.session = None
    turn.inbound = replace(turn.inbound, language=lang)
    turn.send_plain(texts.EXPIRED)
    await turn.start(flow, lang)


def _stopped(turn: Turn, keyword: Keyword) -> None:
    """STOP: the conversation ends, and so do announcements (service replies go on)."""
    _answer_in(turn, keyword)
    turn.send_plain(texts.STOPPED)  # first: in the language of the conversation it ends
    if turn.session is not None:
        turn.finish("conversation_stopped")
    else:
        turn.event("conversation_stopped")
    turn.event("consent_withdrawn", purpose=BROADCAST, source="keyword", detail=STOP)


def _restarted(turn: Turn, keyword: Keyword) -> None:
    """START from a contact who had stopped: announcements again; the conversation stays."""
    _answer_in(turn, keyword)
    turn.event("consent_given", purpose=BROADCAST, source="keyword", detail=START)
    turn.send_plain(texts.BROADCASTS_RESTARTED)


def _answer_in(turn: Turn, keyword: Keyword) -> None:
    """With no conversation, answer in the language of the keyword's list, if spoken."""
    if turn.session is None and keyword.language in turn.flow.settings.locales:
        turn.inbound = replace(turn.inbound, language=keyword.language)


async def _new_conversation(turn: Turn, command: Command | None) -> None:
    asked = turn.world.flows.get(turn.inbound.flow or "")
    flow = asked or turn.world.flow_for(turn.inbound.text)
    if flow is None:
        turn.send_plain(texts.NO_FLOW)
        turn.event("message_unrouted")
        return
    languages = flow.settings.locales
    chosen = command.language if command and command.language in languages else None
    forced = turn.inbound.language if turn.inbound.language in languages else None
    lang = forced or chosen or detect(turn.inbound.text, languages)
    await turn.start(flow, lang or flow.settings.default_locale)


def _during_handoff(turn: Turn) -> None:
    turn.event("handoff_message_received", flow=turn.flow.id)


async def _command(turn: Turn, command: Command) -> None:
    assert turn.session is not None
    turn.event(f"command_{command.name}", step=turn.session["step"])
    if command.name == "restart":
        turn.send_plain(texts.RESTARTED)
        await turn.start(turn.flow, turn.lang)
    elif command.name == "help":
        turn.ask(turn.step, turn.world.speech.plain(texts.HELP, turn.lang))
    elif command.language in turn.flow.settings.locales:
        _switch_language(turn, command.language)
    else:
        turn.ask_language()


async def _language_chosen(turn: Turn) -> None:
    locales = turn.flow.settings.locales
    text = turn.inbound.text.strip()
    chosen = turn.inbound.reply_id or parse_language(text)
    number = ascii_digits(text)  # "١" picks the first language as "1" does
    index = int(number) if len(number) <= 3 and number.isascii() and number.isdigit() else 0
    if 1 <= index <= len(locales):
        chosen = locales[index - 1]
    if chosen in locales:
        _switch_language(turn, chosen)
    else:
        turn.ask_language()


def _switch_language(turn: Turn, lang: str) -> None:
    assert turn.session is not None
    turn.session["lang"] = lang
    turn.event("language_changed", lang=lang)
    turn.ask(turn.step, turn.world.speech.plain(texts.LANGUAGE_CHANGED, lang))


async def _answer(turn: Turn) -> None:
    assert turn.session is not None
    step = turn.step
    if step.kind != "ask":  # a stored session always waits on a question; be safe anyway
        await run_from(turn, step.id)
        return
    verdict = read_answer(
        step,
        turn.inbound,
        turn.world.speech,
        turn.flow.settings.locales,
        turn.variables(),
        turn.where(step),
    )
    if verdict.refusal is None:
        turn.event("answer_accepted", step=step.id)
        turn.variables_set(step.get("save_as"), verdict.value)
        await run_from(turn, turn.flow.next_of(step))
    else:
        await _refused(turn, verdict.refusal, verdict.reason)


async def _refused(turn: Turn, refusal: str, reason: str) -> None:
    assert turn.session is not None
    step = turn.step
    turn.session["tries"] += 1
    turn.event("answer_rejected", step=step.id, reason=reason, tries=turn.session["tries"])
    if turn.session["tries"] > step.get("max_retries", DEFAULT_MAX_RETRIES):
        turn.event("answer_retries_exhausted", step=step.id)
        if step.get("on_exhausted"):
            turn.session["tries"] = 0
            await run_from(turn, step.get("on_exhausted"))
        else:
            turn.send_plain(texts.TOO_MANY_TRIES)
            turn.finish("conversation_abandoned")
        return
    reason_text = turn.world.speech.plain(refusal, turn.lang)
    turn.ask(step, reason_text, "reprompt" if step.get("reprompt") else "text")
