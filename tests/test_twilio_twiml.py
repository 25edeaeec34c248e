"""TwiML written directly is exactly what the twilio SDK's MessagingResponse writes."""

from __future__ import annotations

import random

import pytest
from twilio.twiml.messaging_response import Message, MessagingResponse

from palabre_twilio.replies import Part, twiml

ALPHABET = "aé ب<>&\"'\n\r\t;=?/:%#😀\u200f" + "".join(map(chr, range(0x20, 0x7F)))


def by_the_sdk(replies: list[Part], action: str | None) -> str:
    response = MessagingResponse()
    for part in replies:
        if part.media_url is None:
            response.message(part.body, action=action)
            continue
        message = Message(action=action)
        if part.body:
            message.body(part.body)
        message.media(part.media_url)
        response.append(message)
    return str(response)


def some_text(rng: random.Random, longest: int = 40) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, longest)))


@pytest.mark.parametrize("seed", range(20))
def test_fuzzed_replies_match_the_sdk_byte_for_byte(seed: int):
    rng = random.Random(seed)
    for _ in range(200):  # bounded: 4,000 responses in all
        replies = [
            Part(some_text(rng), some_text(rng) if rng.random() < 0.3 else None)
            for _ in range(rng.randint(0, 3))
        ]
        action = some_text(rng) if rng.random() < 0.5 else None
        assert twiml(replies, action) == by_the_sdk(replies, action), (replies, action)


def test_an_empty_answer_and_an_empty_message_are_written_as_the_sdk_does():
    assert twiml([], None) == by_the_sdk([], None)
    assert twiml([Part("")], "https://bot.example.org/twilio/status") == by_the_sdk(
        [Part("")], "https://bot.example.org/twilio/status"
    )
