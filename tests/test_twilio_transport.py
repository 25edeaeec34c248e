"""The Twilio transport over real HTTP on loopback: signed webhooks in, TwiML out.

Conversations, duplicates and ordering, a store outage, and what reaches the logs.
The fakes and helpers these tests share are in `tests/twilio_fakes.py`.
"""

from __future__ import annotations

import logging
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
from tests.turns import HeldTurn, key_of
from tests.twilio_fakes import (
    ANSWERS,
    PHONE,
    WHATSAPP,
    app_for,
    converse,
    messages,
    post,
    server,
    settings_for,
    webhook,
)

from palabre.logs import KeyValueFormatter
from palabre.stores.redis import RedisSessionStore

__all__ = ["server"]  # fixtures from tests/twilio_fakes.py


# -- conversations ----------------------------------------------------------------------------


@pytest.mark.parametrize("contact", [WHATSAPP, PHONE], ids=["whatsapp", "sms"])
def test_a_signed_conversation_gets_its_code_in_twiml(server, contact):
    replies = converse(server.url, ["Bonjour", *ANSWERS], contact)
    assert replies[0][1].startswith("1/5"), "the greeting is not taken as the first answer"
    assert "1. Homme\n2. Femme" in replies[-2][0], "options are numbered text"
    assert "MBEIBR7DA1" in replies[-1][0]


# -- duplicates and ordering --------------------------------------------------------------------


def test_the_same_message_sid_twice_at_once_is_processed_once(server):
    """Both answers carry the one turn's replies: the second, a redelivery, gets them from
    the outbox rather than an empty answer; the turn ran once (the next answer is taken)."""
    params = webhook("Bonjour")
    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(lambda _: messages(post(server.url, params)), range(2)))
    assert len(replies[0]) == 2 and replies[0] == replies[1]
    assert messages(post(server.url, webhook(ANSWERS[0])))[0].startswith("2/5")


def test_five_messages_at_once_are_answered_in_the_order_they_arrived(
    live_server, tmp_path, redis_url
):
    settings = settings_for(tmp_path)
    app = app_for(settings, store=RedisSessionStore(redis_url))
    with live_server(app) as server, ThreadPoolExecutor(len(ANSWERS)) as pool:
        converse(server.url, ["Bonjour"])
        key = key_of(settings.secrets["PALABRE_SECRET"], WHATSAPP)
        with HeldTurn(redis_url, key) as held:  # the five queue behind it, in a known order
            futures = []
            for queued, answer in enumerate(ANSWERS, start=2):
                futures.append(pool.submit(lambda a=answer: messages(post(server.url, webhook(a)))))
                held.wait_for_queue(queued)
        replies = [future.result() for future in futures]
    assert [reply[0][:3] for reply in replies[:4]] == ["2/5", "3/5", "4/5", "5/5"]
    assert "MBEIBR7DA1" in replies[-1][0], "the answers were applied in the order sent"


# -- a store outage -----------------------------------------------------------------------------


def test_a_store_outage_is_a_503_so_twilio_retries(live_server, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    store = RedisSessionStore(f"redis://127.0.0.1:{closed_port}/0", lock_wait=1)
    with live_server(app_for(settings_for(tmp_path), store=store)) as running:
        response = post(running.url, webhook("Bonjour"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


# -- privacy ------------------------------------------------------------------------------------


def test_no_phone_number_or_body_reaches_the_logs(server, caplog):
    caplog.set_level(logging.DEBUG, logger="palabre")
    converse(server.url, ["Bonjour", *ANSWERS])
    converse(server.url, ["Bonjour", "Kabila"], contact=PHONE)
    status = {"MessageSid": "SM9", "MessageStatus": "failed", "ErrorCode": "21610", "To": PHONE}
    assert post(server.url, status, path="/twilio/status").status_code == 204
    lines = "\n".join(KeyValueFormatter().format(record) for record in caplog.records)
    assert "twilio message received" in lines
    for private in ("243810000001", "Mbengue", "Ibrahima", "Kabila", "MBEIBR7DA1", "Homme"):
        assert private not in lines, f"{private!r} appears in the logs"
