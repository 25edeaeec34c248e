"""Twilio status callbacks: the message log moves forward only, and error 21610 (STOP)
opts the contact out.

The fakes and helpers these tests share are in `tests/twilio_fakes.py`.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
from tests.twilio_fakes import (
    PHONE,
    TEL,
    WHATSAPP,
    FakeTwilio,
    app_for,
    post,
    server,
    settings_for,
    status,
)

from palabre.config import Settings
from palabre.stores.bundle import open_stores
from palabre_twilio.rest import delivery_of

__all__ = ["server"]  # fixtures from tests/twilio_fakes.py


def in_log(tmp_path: Path, query):
    """Run `query(log)` on a second connection to the app's message log."""

    async def run():
        stores = open_stores(Settings(data_dir=tmp_path / "data"))
        try:
            return await query(stores.messages)
        finally:
            await stores.aclose()

    return asyncio.run(run())


def in_consent(tmp_path: Path, asked: list[tuple[str, str]]) -> list[bool]:
    """Whether the app's consent ledger allows service messages to each (key, channel)."""

    async def run():
        stores = open_stores(Settings(data_dir=tmp_path / "data"))
        try:
            return [await stores.consent.allows(key, ch, "service") for key, ch in asked]
        finally:
            await stores.aclose()

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"MessageSid": "SM1"}, "missing MessageStatus"),
        ({"MessageStatus": "sent"}, "missing MessageSid"),
        ({"MessageSid": "SM1", "MessageStatus": "SENT!"}, "MessageStatus"),
        ({"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": "x1"}, "ErrorCode"),
        ({"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": "2161²"}, "ErrorCode"),
    ],
)
def test_a_malformed_status_callback_is_a_400(server, params, reason):
    response = post(server.url, params, path="/twilio/status")
    assert response.status_code == 400
    assert reason in response.text


def test_status_callbacks_update_the_log_and_never_regress(live_server, tmp_path):
    fake = FakeTwilio()
    app = app_for(settings_for(tmp_path, TWILIO_API_BASE=fake.url), http=fake.client())
    with live_server(app) as running:
        for state in ("queued", "sent", "delivered", "sent", "queued"):
            response = post(running.url, status("SM1", state), path="/twilio/status")
            assert response.status_code == 204 and response.content == b""
        read = post(running.url, status("SM2", "read"), path="/twilio/status")
        late = post(running.url, status("SM2", "delivered"), path="/twilio/status")
        key = app.state.host.contact_key(WHATSAPP)
    assert read.status_code == late.status_code == 204
    first, second = in_log(tmp_path, lambda log: asyncio.gather(log.get("SM1"), log.get("SM2")))
    assert (first.status, first.channel, first.contact_key) == ("delivered", "twilio", key)
    assert second.status == "read"
    assert fake.requests == [], "a status callback sends nothing"


def test_error_21610_withdraws_the_contacts_consent(live_server, tmp_path):
    with live_server(app_for(settings_for(tmp_path))) as running:
        failed = status("SM3", "undelivered", to=PHONE, ErrorCode="21610")
        assert post(running.url, failed, path="/twilio/status").status_code == 204
        other = status("SM4", "failed", to=WHATSAPP, ErrorCode="63016")
        assert post(running.url, other, path="/twilio/status").status_code == 204
        host = running.server.config.app.state.host
        keys = host.contact_key(TEL), host.contact_key(WHATSAPP)
    logged = in_log(tmp_path, lambda log: log.get("SM3"))
    assert (logged.status, logged.error_code) == ("undelivered", "21610")
    allowed = in_consent(tmp_path, [(keys[0], "sms"), (keys[1], "whatsapp")])
    assert allowed == [False, True], "only 21610 (STOP) withdraws a contact's consent"


def test_a_sandbox_refusal_is_logged_with_what_to_do(live_server, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    with live_server(app_for(settings_for(tmp_path))) as running:
        failed = status("SM5", "failed", to=WHATSAPP, ErrorCode="63015")
        assert post(running.url, failed, path="/twilio/status").status_code == 204
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "join" in warning.getMessage() and "+14155238886" in warning.getMessage()
    assert WHATSAPP.removeprefix("whatsapp:") not in caplog.text, "no number in the log"


@pytest.mark.parametrize("code", [63015, 63016])
def test_a_window_or_sandbox_refusal_is_final_and_says_why(code):
    body = {"code": code, "message": "refused", "more_info": "", "status": 400}
    delivery = delivery_of(httpx.Response(400, json=body))
    assert (delivery.provider_id, delivery.error_code, delivery.retryable) == (
        None, str(code), False,
    )  # fmt: skip
    assert "window" in delivery.detail or "sandbox" in delivery.detail
