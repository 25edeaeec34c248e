"""One WhatsApp message read as an Inbound: each message type as documented, media and
locations asked again, reactions ignored, and senders as canonical addresses (a wa_id,
else a business-scoped user id; neither: refused with a logged 200).

The fakes and helpers these tests share are in `tests/meta_fakes.py`.
"""

from __future__ import annotations

import logging

import pytest
from tests.meta_fakes import (
    ALICE,
    ALICE_AT,
    BSUID,
    SENT,
    change,
    from_user,
    graph,
    message,
    meta,
    notification,
    outbox_rows,
    outbox_statuses,
    post,
    reply,
    say,
    text,
    wait_until,
)

from palabre.runtime.messages import Inbound, Media
from palabre_meta_cloud.inbound import read_message

__all__ = ["graph", "meta"]  # fixtures from tests/meta_fakes.py


# -- what each message type does ---------------------------------------------------------


def test_message_types_become_inbounds_as_documented():
    image = {"id": "1479537139650973", "mime_type": "image/jpeg", "sha256": "x", "caption": ""}
    assert read_message(message(ALICE, "w1", "image", image=image)) == Inbound(
        ALICE_AT,
        "",
        "whatsapp",
        "w1",
        media=(Media("image/jpeg", media_id="1479537139650973"),),
        transport="meta_cloud",
        sent_at=float(SENT),  # the message's timestamp: when the contact sent it
    )
    document = {"id": "D1", "mime_type": "application/pdf", "filename": "a.pdf", "caption": "CIU"}
    read = read_message(message(ALICE, "w2", "document", document=document))
    assert (read.text, read.media) == ("CIU", (Media("application/pdf", media_id="D1"),))
    where = {"latitude": -4.3217, "longitude": 15.3125, "name": "Gombe", "address": "x"}
    assert read_message(message(ALICE, "w3", "location", location=where)).location == (
        -4.3217,
        15.3125,
    )
    button = message(ALICE, "w4", "button", button={"payload": "2", "text": "Femme"})
    assert (read_message(button).reply_id, read_message(button).text) == ("2", "Femme")
    tap = read_message(reply(ALICE, "w5", "list_reply", "4", "Autre"))
    assert (tap.reply_id, tap.text, tap.channel) == ("4", "Autre", "whatsapp")
    emoji = message(ALICE, "w6", "reaction", reaction={"message_id": "wamid.OUT1", "emoji": "👍"})
    assert read_message(emoji) is None
    errors = [{"code": 131051, "title": "Message type unknown"}]
    unknown = read_message(message(ALICE, "w7", "unsupported", errors=errors))
    assert (unknown.text, unknown.media, unknown.reply_id) == ("", (), None)


NOT_TEXT = "Désolé, je ne peux lire que des messages texte ici."
EMPTY = "Veuillez écrire une réponse."


@pytest.mark.parametrize(
    ("kind", "content", "why"),
    [
        ("image", {"image": {"id": "I1", "mime_type": "image/jpeg"}}, NOT_TEXT),
        ("audio", {"audio": {"id": "A1", "mime_type": "audio/ogg; codecs=opus"}}, NOT_TEXT),
        ("video", {"video": {"id": "V1", "mime_type": "video/mp4"}}, NOT_TEXT),
        ("document", {"document": {"id": "D1", "mime_type": "application/pdf"}}, NOT_TEXT),
        ("location", {"location": {"latitude": -4.3, "longitude": 15.3}}, NOT_TEXT),
        ("unsupported", {"errors": [{"code": 131051, "title": "Unsupported"}]}, EMPTY),
    ],
)
def test_media_location_and_unsupported_messages_get_the_question_again(
    meta, graph, kind, content, why
):
    say(meta, ALICE, "wamid.IN1", "Bonjour")
    wait_until(lambda: len(graph.requests) == 2)
    incoming = message(ALICE, "wamid.M", kind, **content)
    assert post(meta, notification(change([incoming]))).status_code == 200
    wait_until(lambda: len(graph.requests) == 3)
    why_line, question = graph.texts(ALICE)[-1].split("\n")
    assert why_line.startswith(why)
    assert "MBE pour Mbengue" in question, "the question is asked again"


def test_a_reaction_is_ignored_politely(meta, graph, tmp_path):
    say(meta, ALICE, "wamid.IN1", "Bonjour")
    wait_until(lambda: outbox_statuses(tmp_path) == {"sent": 2})
    emoji = message(
        ALICE, "wamid.R", "reaction", reaction={"message_id": "wamid.OUT2", "emoji": "👍"}
    )
    assert post(meta, notification(change([emoji]))).status_code == 200
    assert outbox_statuses(tmp_path) == {"sent": 2}, "a reaction queues no reply"
    assert len(graph.requests) == 2
    say(meta, ALICE, "wamid.IN2", "Mbengue")
    wait_until(lambda: graph.texts(ALICE)[-1].startswith("2/5"))


# -- senders: wa_ids and business-scoped user ids -------------------------------------


@pytest.mark.parametrize("odd", [None, "", "soon", "1717000000.5", "١٧١٧", "9" * 13, 1717000000])
def test_an_odd_timestamp_is_no_time_and_the_window_counts_from_arrival(odd):
    sent = message(ALICE, "w9", "text", text={"body": "bonjour"}) | {"timestamp": odd}
    assert read_message(sent).sent_at is None


def test_senders_become_canonical_addresses():
    both = read_message(text(ALICE, "w1", "Bonjour") | {"from_user_id": BSUID})
    user = read_message(from_user(BSUID, "w2", "Bonjour"))
    assert both is not None and user is not None
    assert both.contact == ALICE_AT, "a number, when Meta gives one, comes first"
    assert user.contact == f"whatsapp-user:{BSUID}"
    unusable = text("Vodacom", "w3", "Promo") | {"from_user_id": "not a bsuid"}
    assert read_message(unusable) is None


def test_a_message_with_no_usable_sender_is_refused_with_a_logged_200(
    meta, graph, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="palabre")
    nobody = text("Vodacom", "wamid.V1", "Promo")
    assert post(meta, notification(change([nobody]))).status_code == 200
    assert outbox_rows(tmp_path) == 0, "no turn ran, so no reply was queued"
    assert graph.requests == []
    refused = [r for r in caplog.records if "without a usable sender" in r.getMessage()]
    assert [getattr(r, "wamid", None) for r in refused] == ["wamid.V1"]
    assert "Vodacom" not in caplog.text
