"""The `/meta` webhook over real HTTP on loopback: verification, conversations, duplicates,
statuses, a store failure (503, then Meta's retry), and what reaches the logs.

Replies go to a fake Graph API through httpx.ASGITransport. What a webhook did not send
is read from the outbox, where its replies are before its 200. The fakes and helpers
these tests share are in `tests/meta_fakes.py`.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from tests.meta_fakes import (
    ACCESS_TOKEN,
    ALICE,
    ALICE_AT,
    APP_SECRET,
    BOB,
    BOB_AT,
    GENDER_ROWS,
    PHONE_ID,
    VERIFY_TOKEN,
    app_for,
    change,
    graph,
    graph_error,
    logged,
    meta,
    notification,
    outbox_rows,
    outbox_settled,
    outbox_statuses,
    post,
    reply,
    say,
    settings_for,
    status,
    text,
    wait_until,
)

from palabre.config import Settings
from palabre.contacts import contact_hasher, contact_key
from palabre.errors import StoreUnavailable
from palabre.logs import KeyValueFormatter
from palabre.stores.bundle import open_stores
from palabre.stores.sqlite import SQLiteSessionStore

__all__ = ["graph", "meta"]  # fixtures from tests/meta_fakes.py


# -- verification ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "token", "status"),
    [
        ("subscribe", VERIFY_TOKEN, 200),
        ("subscribe", "wrong-token", 403),
        ("subscribe", None, 403),
        ("unsubscribe", VERIFY_TOKEN, 403),
        (None, VERIFY_TOKEN, 403),
    ],
)
def test_verification_echoes_the_challenge_only_with_the_right_mode_and_token(
    meta, mode, token, status
):
    query = {"hub.challenge": "1158201444"}
    query |= {"hub.mode": mode} if mode else {}
    query |= {"hub.verify_token": token} if token else {}
    response = meta.get("/meta", params=query)
    assert response.status_code == status
    if status == 200:
        assert response.text == "1158201444"
        assert response.headers["content-type"].startswith("text/plain")
    else:
        assert "1158201444" not in response.text


# -- conversations ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["list_reply", "button_reply"])
def test_signed_webhooks_drive_the_uic_flow_and_replies_reach_the_graph_api(meta, graph, kind):
    for i, answer in enumerate(["Bonjour", "Mbengue", "Ibrahima", "1997", "DA"]):
        say(meta, ALICE, f"wamid.IN{i}", answer)
    wait_until(lambda: any(b["type"] == "interactive" for b in graph.bodies()))
    gender = graph.bodies()[-1]
    assert gender["to"] == ALICE
    assert gender["interactive"]["type"] == "list"
    assert gender["interactive"]["body"]["text"] == "5/5 Quel est votre genre ?"
    assert gender["interactive"]["action"]["button"] == "Choisir"
    assert gender["interactive"]["action"]["sections"] == [{"rows": GENDER_ROWS}]

    tap = reply(ALICE, "wamid.IN9", kind, "1", "Homme")
    assert post(meta, notification(change([tap]))).status_code == 200
    wait_until(lambda: "MBEIBR7DA1" in graph.texts(ALICE)[-1])
    # The code comes as an image (its QR code), uploaded first and sent by id with a caption.
    upload, last = graph.requests[-2:]
    assert upload["path"] == f"/v21.0/{PHONE_ID}/media"
    assert last["path"] == f"/v21.0/{PHONE_ID}/messages"
    assert last["auth"] == f"Bearer {ACCESS_TOKEN}"
    assert last["json"] == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": ALICE,
        "type": "image",
        "image": {"id": last["json"]["image"]["id"], "caption": last["json"]["image"]["caption"]},
    }
    assert "MBEIBR7DA1" in last["json"]["image"]["caption"]
    assert all(r["json"]["to"] == ALICE for r in graph.requests if r["path"].endswith("/messages"))


def test_one_body_with_two_entries_several_messages_and_a_duplicate_is_processed_once(
    meta, graph, tmp_path
):
    hello = text(ALICE, "wamid.A1", "Bonjour")
    payload = notification(
        change([hello, dict(hello), text(ALICE, "wamid.A2", "Mbengue")]),
        change([text(BOB, "wamid.B1", "Hello")]),
    )
    assert post(meta, payload).status_code == 200
    wait_until(lambda: len(graph.requests) == 5)
    alice = graph.texts(ALICE)
    assert len(alice) == 3, "the duplicate wamid must be answered once"
    assert alice[1].startswith("1/5") and alice[2].startswith("2/5"), "answered in order"
    assert [t[:3] for t in graph.texts(BOB)][1] == "1/5"
    assert "What are the first 3 letters" in graph.texts(BOB)[1]

    wait_until(lambda: outbox_statuses(tmp_path) == {"sent": 5})
    assert post(meta, payload).status_code == 200, "Meta redelivers: answer 200, reply nothing"
    assert outbox_statuses(tmp_path) == {"sent": 5}, "the redelivery queued no reply"
    assert len(graph.requests) == 5


# -- statuses ------------------------------------------------------------------------------


def test_statuses_update_the_message_log_and_never_send_anything(meta, graph, tmp_path):
    say(meta, ALICE, "wamid.IN1", "Bonjour")
    wait_until(lambda: len(graph.requests) == 2)
    first, second = "wamid.OUT1", "wamid.OUT2"
    assert logged(tmp_path, first).status == "accepted"

    wait_until(lambda: outbox_settled(tmp_path))
    updates = [status(first, "sent"), status(first, "delivered"), status(first, "read")]
    updates += [status(second, "failed", 131047), status("wamid.OLD", "failed", 131026)]
    assert post(meta, notification(change(statuses=updates))).status_code == 200
    assert outbox_rows(tmp_path) == 2 and outbox_settled(tmp_path), "no reply was queued"
    assert len(graph.requests) == 2, "a status must never trigger a reply"
    assert logged(tmp_path, first).status == "read"
    window_closed = logged(tmp_path, second)
    assert (window_closed.status, window_closed.error_code) == ("failed", "131047")
    assert logged(tmp_path, "wamid.OLD").error_code == "131026"


def test_error_131050_withdraws_the_contacts_broadcast_consent_only(meta, tmp_path):
    stopped = status("wamid.OUT7", "failed", 131050)  # the user stopped marketing messages
    assert post(meta, notification(change(statuses=[stopped]))).status_code == 200
    key = contact_key(contact_hasher(b"test-secret"), ALICE_AT)

    async def allowed() -> list[bool]:
        stores = open_stores(Settings(data_dir=tmp_path / "data"))
        try:
            consent = stores.consent
            return [await consent.allows(key, "whatsapp", p) for p in ("broadcast", "service")]
        finally:
            await stores.aclose()

    assert asyncio.run(allowed()) == [False, True], "broadcasts withdrawn, service kept"


@pytest.mark.parametrize("code", ["13104²", "١٣١٠٤٧", "9" * 5000, "131047"])
def test_a_failed_status_with_any_error_code_is_recorded_never_a_500(meta, graph, tmp_path, code):
    update = status("wamid.OUT9", "failed") | {"errors": [{"code": code, "title": "x"}]}
    assert post(meta, notification(change(statuses=[update]))).status_code == 200
    assert logged(tmp_path, "wamid.OUT9").error_code == code


# -- a store failure --------------------------------------------------------------------------


class FailingFor(SQLiteSessionStore):
    """A real SQLite store whose commits fail for one contact, as when Redis goes away."""

    failing = ""  # that contact's key, as the engine stores it: set once the app started

    async def commit(self, contact, session, **options):
        if contact == self.failing:
            raise StoreUnavailable("the store is down")
        await super().commit(contact, session, **options)


def test_a_store_failure_answers_503_and_meta_s_retry_sends_every_reply_exactly_once(
    live_server, graph, tmp_path
):
    store = FailingFor(tmp_path / "sessions.db")
    app = app_for(settings_for(tmp_path, graph.url), store=store, http=graph.client())
    payload = notification(
        change([text(ALICE, "wamid.A1", "Bonjour"), text(BOB, "wamid.B1", "Bonjour")])
    )
    with live_server(app) as server, httpx.Client(base_url=server.url) as client:
        store.failing = app.state.host.contact_key(BOB_AT)
        response = post(client, payload)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        wait_until(lambda: outbox_statuses(tmp_path) == {"sent": 2, "held": 2})
        assert len(graph.texts(ALICE)) == 2, "the committed turn's replies are sent"
        assert graph.texts(BOB) == [], "the turn that failed to commit sent nothing"

        store.failing = ""  # the store is back, and Meta retries the whole body
        assert post(client, payload).status_code == 200
        wait_until(lambda: outbox_statuses(tmp_path) == {"sent": 4})
    assert len(graph.texts(ALICE)) == 2, "Alice's message was processed once"
    assert len(graph.texts(BOB)) == 2, "Bob's turn ran again and its replies left once"


# -- privacy ---------------------------------------------------------------------------


def test_logs_carry_ids_never_phone_numbers_bodies_or_secrets(meta, graph, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    for i, answer in enumerate(["Bonjour", "Mbengue", "Ibrahima", "1997", "DA"]):
        say(meta, ALICE, f"wamid.IN{i}", answer)
    post(meta, notification(change([reply(ALICE, "wamid.IN9", "list_reply", "1", "Homme")])))
    wait_until(lambda: "MBEIBR7DA1" in graph.texts(ALICE)[-1])
    post(meta, notification(change(statuses=[status("wamid.OUT1", "failed", 131047)])))
    graph.answers.append((401, graph_error(190, "Error validating access token")))
    before = len(graph.requests)
    say(meta, ALICE, "wamid.IN10", "aide")
    wait_until(lambda: len(graph.requests) == before + 2 and outbox_settled(tmp_path))
    formatter = KeyValueFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert any("message accepted by Meta" in line and "wamid=wamid.OUT" in line for line in lines)
    assert any("OPERATOR ACTION NEEDED" in line for line in lines)
    private = [ALICE, "Mbengue", "Ibrahima", "MBEIBR7DA1", "Homme", ACCESS_TOKEN, APP_SECRET]
    leaks = [(word, line) for line in lines for word in private if word in line]
    assert leaks == []
