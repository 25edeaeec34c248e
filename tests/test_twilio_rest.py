"""`TwilioTransport.send()` through Twilio's REST API: the documented request, SMS parts,
errors as failed deliveries, opted-out contacts, and images as `MediaUrl`.

The fake Twilio REST API is reached through httpx.ASGITransport; only the test of an
unreachable API opens a (closed) loopback port. The fakes and helpers these tests share
are in `tests/twilio_fakes.py`.
"""

from __future__ import annotations

import base64
import socket
from urllib.parse import urlsplit

import httpx
import pytest
from tests.test_qr import CODE as QR_CODE
from tests.test_qr import decode as decode_qr
from tests.twilio_fakes import (
    ACCOUNT,
    BROKEN_NUMBER,
    BUSY_NUMBER,
    INVALID_NUMBER,
    PHONE,
    PUBLIC,
    SMS_FROM,
    TEL,
    TOKEN,
    WHATSAPP,
    WHATSAPP_FROM,
    app_for,
    fake_twilio,
    settings_for,
    started,
)

from palabre.runtime.messages import Option, Outbound
from palabre_qr.png import qr_png
from palabre_twilio import TwilioTransport

__all__ = ["fake_twilio"]  # fixtures from tests/twilio_fakes.py


@pytest.mark.anyio
async def test_send_posts_the_documented_request_and_logs_the_sid(tmp_path, fake_twilio):
    app, transport = started(tmp_path, fake_twilio, PALABRE_PUBLIC_URL="https://bot.example.org")
    question = Outbound(WHATSAPP, "5/5 Genre ?", "fr", (Option("1", "Homme"), Option("2", "Femme")))
    async with app.router.lifespan_context(app):
        delivery = await transport.send(question)
        logged = await app.state.host.stores.messages.get(delivery.provider_id)
        key = app.state.host.contact_key(WHATSAPP)
    credentials = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    assert fake_twilio.requests == [
        {
            "path": f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
            "authorization": f"Basic {credentials}",
            "content-type": "application/x-www-form-urlencoded",
            "form": {
                "To": WHATSAPP,
                "From": WHATSAPP_FROM,
                "Body": "5/5 Genre ?\n1. Homme\n2. Femme",
                "StatusCallback": "https://bot.example.org/twilio/status",
            },
        }
    ]
    assert (delivery.status, delivery.error_code) == ("queued", None)
    assert (logged.status, logged.channel, logged.contact_key) == ("queued", "twilio", key)


@pytest.mark.anyio
async def test_a_long_sms_is_sent_in_parts_from_the_sms_number(tmp_path, fake_twilio):
    app, transport = started(tmp_path, fake_twilio)
    async with app.router.lifespan_context(app):
        delivery = await transport.send(Outbound(TEL, "Bonjour à vous. " * 250, "fr"))
        logged = [await app.state.host.stores.messages.get(sid) for sid in fake_twilio.sids]
    forms = [request["form"] for request in fake_twilio.requests]
    assert len(forms) == 3
    assert {(f["To"], f["From"]) for f in forms} == {(PHONE, SMS_FROM)}
    assert all(len(f["Body"]) <= 1600 and "StatusCallback" not in f for f in forms)
    assert " ".join(f["Body"] for f in forms) == ("Bonjour à vous. " * 250).strip()
    assert delivery.provider_id == fake_twilio.sids[0] and delivery.status == "queued"
    assert all(entry is not None and entry.status == "queued" for entry in logged)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("to", "code", "retryable"),
    [(INVALID_NUMBER, "21211", False), (BUSY_NUMBER, "20429", True), (BROKEN_NUMBER, None, True)],
)
async def test_twilio_errors_become_failed_deliveries(tmp_path, fake_twilio, to, code, retryable):
    app, transport = started(tmp_path, fake_twilio)
    async with app.router.lifespan_context(app):
        delivery = await transport.send(Outbound(f"tel:{to}", "Bonjour", "fr"))
    assert (delivery.provider_id, delivery.status) == (None, "failed")
    assert (delivery.error_code, delivery.retryable) == (code, retryable)
    assert to not in delivery.detail, "Twilio's message quotes the number: it is not kept"


@pytest.mark.anyio
@pytest.mark.parametrize("to", ["whatsapp-user:US.13491208655302741918", "not an address"])
async def test_an_address_twilio_cannot_reach_fails_for_good_without_a_request(
    tmp_path, fake_twilio, to
):
    app, transport = started(tmp_path, fake_twilio)
    async with app.router.lifespan_context(app):
        delivery = await transport.send(Outbound(to, "Bonjour", "fr"))
    assert (delivery.status, delivery.error_code, delivery.retryable) == (
        "failed",
        "invalid_address",
        False,
    )
    assert fake_twilio.requests == []


@pytest.mark.anyio
async def test_an_unreachable_api_is_a_retryable_failure(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = app_for(settings_for(tmp_path, TWILIO_API_BASE=closed), transport := TwilioTransport())
    async with app.router.lifespan_context(app):
        delivery = await transport.send(Outbound(TEL, "Bonjour", "fr"))
    assert (delivery.status, delivery.retryable) == ("failed", True)


# -- images: a QR code at its signed public URL -------------------------------------------------


async def stored_qr(app) -> tuple[str, str]:
    """Put the QR PNG in the app's media store: its media id and its signed URL."""
    host = app.state.host
    media_id = await host.stores.media.put(qr_png(QR_CODE), "image/png")
    return media_id, await host.media_url(media_id)


@pytest.mark.anyio
async def test_send_posts_the_media_url_of_the_image(tmp_path, fake_twilio):
    app, transport = started(tmp_path, fake_twilio, PALABRE_PUBLIC_URL=PUBLIC)
    async with app.router.lifespan_context(app):
        media_id, url = await stored_qr(app)
        delivery = await transport.send(Outbound(WHATSAPP, "Votre code", "fr", image=media_id))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=PUBLIC)
        async with client:
            fetched = await client.get(urlsplit(url).path)
    assert url.startswith(f"{PUBLIC}/media/")
    assert [request["form"] for request in fake_twilio.requests] == [
        {
            "To": WHATSAPP,
            "From": WHATSAPP_FROM,
            "Body": "Votre code",
            "MediaUrl": url,
            "StatusCallback": f"{PUBLIC}/twilio/status",
        }
    ]
    assert delivery.status == "queued"
    assert decode_qr(fetched.content) == QR_CODE


@pytest.mark.anyio
async def test_a_long_sms_sends_its_image_with_the_first_part_only(tmp_path, fake_twilio):
    app, transport = started(tmp_path, fake_twilio, PALABRE_PUBLIC_URL=PUBLIC)
    async with app.router.lifespan_context(app):
        media_id, url = await stored_qr(app)
        await transport.send(Outbound(TEL, "Bonjour à vous. " * 250, "fr", image=media_id))
        await transport.send(Outbound(TEL, "", "fr", image=media_id))
    forms = [request["form"] for request in fake_twilio.requests]
    assert [form.get("MediaUrl") for form in forms] == [url, None, None, url]
    assert "Body" not in forms[-1], "an image alone needs no empty body"


@pytest.mark.anyio
async def test_an_expired_image_is_sent_as_text_only(tmp_path, fake_twilio, caplog):
    app, transport = started(tmp_path, fake_twilio, PALABRE_PUBLIC_URL=PUBLIC)
    async with app.router.lifespan_context(app):
        await transport.send(Outbound(WHATSAPP, "Votre code", "fr", image="gone-or-purged"))
    assert "MediaUrl" not in fake_twilio.requests[0]["form"]
    assert "twilio image expired or unknown" in caplog.text
