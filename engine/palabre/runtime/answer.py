"""Read a contact's answer to a question: a choice, or a cleaned and validated value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from palabre.flow.answers import (
    MAX_ANSWER_LENGTH,
    ascii_digits,
    first_failure,
    non_latin_letters,
    normalize,
)
from palabre.flow.model import Choice, Step
from palabre.i18n import messages as texts
from palabre.i18n.language import fold
from palabre.runtime.messages import Inbound
from palabre.runtime.speech import Speech


@dataclass(frozen=True)
class Verdict:
    """The value to save, or the reason (an engine text) why the answer was refused."""

    value: Any = None
    refusal: str | None = None
    reason: str = ""


def read_answer(
    step: Step,
    inbound: Inbound,
    speech: Speech,
    languages: tuple[str, ...],
    variables: Mapping[str, Any],
    where: str,
) -> Verdict:
    """Judge `inbound` as the answer to the `ask` step `step`.

    Every Unicode decimal digit is read as its ASCII digit first (١٩٩٧ → 1997), so choices,
    normalizers, rules and saved values all see 0-9.
    """
    text = ascii_digits(inbound.text.strip())
    choices = step.get("choices")
    if choices and inbound.reply_id:
        verdict = _by_reply_id(choices, inbound.reply_id)
        if verdict.refusal is None or not text:
            return verdict
        # A template quick-reply carries its own payload: its text may still name a choice.
    if not text:
        return (
            Verdict(refusal=texts.NOT_TEXT, reason="not_text")
            if inbound.media or (inbound.location)
            else Verdict(refusal=texts.EMPTY, reason="empty")
        )
    if len(text) > MAX_ANSWER_LENGTH:
        return Verdict(refusal=texts.TOO_LONG, reason="too_long")
    if choices:
        return _by_text(choices, text, speech, languages)
    normalizers = step.get("normalize", ())
    value = normalize(text, normalizers)
    failure = first_failure(value, step.get("validate", {}))
    if failure and "letters" in normalizers and non_latin_letters(text):
        # `letters` keeps A-Z only: "too short" would not tell an Arabic-script writer why.
        return Verdict(refusal=texts.LATIN_LETTERS, reason="not_latin")
    if failure:
        return Verdict(refusal=failure, reason="invalid")
    if step.get("save"):
        value = speech.templates.render(
            step.get("save"), {**variables, "value": value}, where=f"{where}.save"
        )
    return Verdict(value=value)


def _by_reply_id(choices: list[Choice], reply_id: str) -> Verdict:
    for choice in choices:
        if choice.id == reply_id:
            return Verdict(value=choice.id)
    return Verdict(refusal=texts.NOT_A_CHOICE, reason="not_a_choice")


def _by_text(
    choices: list[Choice], text: str, speech: Speech, languages: tuple[str, ...]
) -> Verdict:
    folded = fold(text).rstrip(".)")
    if folded.isascii() and folded.isdigit() and 1 <= int(folded) <= len(choices):
        return Verdict(value=choices[int(folded) - 1].id)
    for choice in choices:
        titles = speech.titles_everywhere(choice, languages)
        names = {ascii_digits(fold(name)) for name in (choice.id, *titles)}
        if folded in names:
            return Verdict(value=choice.id)
    return Verdict(refusal=texts.NOT_A_CHOICE, reason="not_a_choice")
