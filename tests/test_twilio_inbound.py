"""A Twilio message webhook read as the engine's Inbound: media, buttons and locations,
malformed fields (400), and senders that are no phone number (no reply, no 5xx).

The fakes and helpers these tests share are in `tests/twilio_fakes.py`.
"""

from __future__ import annotations

import logging

import pytest
from starlette.datastructures import ImmutableMultiDict
from tests.twilio_fakes import (
    ANSWERS,
    PHONE,
    TEL,
    WHATSAPP,
    converse,
    messages,
    post,
    server,
    webhook,
)

from palabre_twilio.inbound import UnreachableSender, to_inbound

__all__ = ["server"]  # fixtures from tests/twilio_fakes.py


# -- media, buttons, locations ------------------------------------------------------------------


def test_a_voice_note_gets_the_text_only_reprompt(server):
    converse(server.url, ["Bonjour"])
    voice = webhook(
        "",
        NumMedia="1",
        MediaUrl0="https://api.twilio.com/media/ME1",
        MediaContentType0="audio/ogg",
    )
    reply = messages(post(server.url, voice))
    assert "ne peux lire que des messages texte" in reply[0]


def test_a_location_is_not_an_answer_either(server):
    converse(server.url, ["Bonjour"])
    reply = messages(post(server.url, webhook("", Latitude="-4.325", Longitude="15.322")))
    assert "ne peux lire que des messages texte" in reply[0]


def test_a_button_payload_picks_the_choice(server):
    converse(server.url, ["Bonjour", *ANSWERS[:4]])
    reply = messages(post(server.url, webhook("", ButtonPayload="2", ButtonText="Femme")))
    assert "MBEIBR7DA2" in reply[0]


def test_webhook_fields_become_the_inbound_message():
    params = webhook(
        "ignored when a button was tapped",
        ButtonPayload="2",
        ButtonText="Femme",
        NumMedia="2",
        MediaUrl0="https://api.twilio.com/m/ME0",
        MediaContentType0="image/jpeg",
        MediaUrl1="https://api.twilio.com/m/ME1",
        MediaContentType1="audio/ogg",
        Latitude="-4.325",
        Longitude="15.322",
    )
    inbound = to_inbound(ImmutableMultiDict(params))
    assert (inbound.contact, inbound.channel) == (WHATSAPP, "whatsapp")
    assert (inbound.text, inbound.reply_id) == ("Femme", "2")
    assert inbound.message_id == params["MessageSid"]
    assert [(m.content_type, m.url) for m in inbound.media] == [
        ("image/jpeg", "https://api.twilio.com/m/ME0"),
        ("audio/ogg", "https://api.twilio.com/m/ME1"),
    ]
    assert inbound.location == (-4.325, 15.322)
    sms = to_inbound(ImmutableMultiDict(webhook("hi", PHONE)))
    assert (sms.contact, sms.channel) == (TEL, "sms"), "an SMS sender becomes a tel: address"


# -- malformed requests -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"From": ""}, "missing From"),
        ({"MessageSid": ""}, "missing MessageSid"),
        ({"MessageSid": "SM<script>"}, "MessageSid"),
        ({"NumMedia": "two"}, "NumMedia"),
        ({"NumMedia": "-1"}, "NumMedia"),
        ({"NumMedia": "99"}, "NumMedia"),
        ({"NumMedia": "²"}, "NumMedia"),  # isdigit() says yes, int() says no
        ({"NumMedia": "0²"}, "NumMedia"),
        ({"NumMedia": "١"}, "NumMedia"),  # an Arabic-Indic 1: no webhook writes digits so
        ({"NumMedia": "9" * 5000}, "NumMedia"),  # int() refuses over 4,300 digits
        ({"NumMedia": "1"}, "missing MediaUrl0"),
        ({"Latitude": "north", "Longitude": "15.3"}, "Latitude"),
        ({"Latitude": "91", "Longitude": "15.3"}, "Latitude"),
        ({"Latitude": "nan", "Longitude": "15.3"}, "Latitude"),
        ({"Latitude": "-4.3"}, "Longitude"),
    ],
)
def test_a_signed_but_malformed_webhook_is_a_400(server, change, reason):
    params = webhook("Bonjour") | change
    response = post(server.url, params)
    assert response.status_code == 400
    assert reason in response.text


@pytest.mark.parametrize(
    "sender", ["Vodacom", "40404", "whatsapp:Vodacom", "+1", "243810000001", "whatsapp:"]
)
def test_a_sender_that_is_no_phone_number_gets_no_reply_and_no_5xx(server, sender, caplog):
    params = webhook("Promo", sender)
    with pytest.raises(UnreachableSender):
        to_inbound(ImmutableMultiDict(params))
    caplog.clear()
    caplog.set_level(logging.INFO, logger="palabre")
    response = post(server.url, params)
    assert response.status_code == 200, "signed by Twilio: a retry would not help"
    assert "<Message" not in response.text, "no reply can reach an operator's sender id"
    refused = [r for r in caplog.records if "no phone number" in r.getMessage()]
    assert [getattr(r, "message_sid", None) for r in refused] == [params["MessageSid"]]
    assert "Vodacom" not in caplog.text and "40404" not in caplog.text
