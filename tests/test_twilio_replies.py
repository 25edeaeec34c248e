"""What a contact receives through Twilio: bodies within 1600 characters, and TwiML whose
image (a QR code) rides on the first part, at its signed public URL.

The fakes and helpers these tests share are in `tests/twilio_fakes.py`.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from tests.test_qr import CODE as QR_CODE
from tests.test_qr import decode as decode_qr
from tests.test_qr import qr_flow
from tests.twilio_fakes import PHONE, PUBLIC, TEL, WHATSAPP, post, settings_for, webhook

import palabre_qr
import palabre_twilio
from palabre import builtins
from palabre.plugins import make_plugin_manager
from palabre.runtime.messages import Outbound
from palabre.sms import segment_count
from palabre.web.app import create_app
from palabre_twilio.replies import bodies, twiml
from palabre_twilio.replies import parts as reply_parts


def test_a_long_sms_reply_is_split_into_messages_of_at_most_1600_chars():
    text = "Bonjour " * 500
    sms = bodies(Outbound(TEL, text, "fr"))
    whatsapp = bodies(Outbound(WHATSAPP, text, "fr"))
    assert len(sms) == 3 and all(len(part) <= 1600 for part in sms)
    assert all(segment_count(part) <= 10 for part in sms), "parts are whole segments"
    assert len(whatsapp) == 3 and all(len(part) <= 1600 for part in whatsapp)


# -- images: a QR code at its signed public URL -------------------------------------------------


def qr_app(tmp_path: Path, **options: str):
    """An app serving the QR card flow (it ends with a QR image) through Twilio."""
    manager = make_plugin_manager([builtins, palabre_twilio, palabre_qr], entry_points=False)
    settings = settings_for(tmp_path, **options)
    return create_app([qr_flow(tmp_path)], settings, plugins=manager)


def twiml_parts(response: httpx.Response) -> list[tuple[str, list[str]]]:
    """(body, media URLs) of each <Message>: text directly inside, or in <Body>."""
    assert response.status_code == 200, f"{response.status_code}: {response.text}"
    found = []
    for message in ET.fromstring(response.content).iter("Message"):
        body = message.findtext("Body") if message.find("Body") is not None else message.text
        found.append((body or "", [m.text or "" for m in message.iter("Media")]))
    return found


def qr_card(base: str, signed_url: str, contact: str = WHATSAPP) -> list[tuple[str, list[str]]]:
    post(base, webhook("Hello", contact), signed_url=signed_url)
    return twiml_parts(post(base, webhook(QR_CODE, contact), signed_url=signed_url))


def test_the_qr_image_rides_in_twiml_at_its_public_signed_url(live_server, tmp_path):
    with live_server(qr_app(tmp_path, PALABRE_PUBLIC_URL=PUBLIC)) as running:
        [(body, media)] = qr_card(running.url, f"{PUBLIC}/twilio")
        assert body == f"Your code is {QR_CODE}."
        [url] = media
        assert url.startswith(f"{PUBLIC}/media/") and url.endswith(".png")
        assert QR_CODE not in url
        fetched = httpx.get(running.url + urlsplit(url).path)  # as Twilio would, via the proxy
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/png"
    assert decode_qr(fetched.content) == QR_CODE


def test_without_a_public_url_images_are_left_out_with_one_warning(live_server, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="palabre.twilio")
    with live_server(qr_app(tmp_path)) as running:
        first = qr_card(running.url, f"{running.url}/twilio")
        second = qr_card(running.url, f"{running.url}/twilio", contact=PHONE)
    assert first == second == [(f"Your code is {QR_CODE}.", [])], "the text still goes"
    warnings = [r for r in caplog.records if "PALABRE_PUBLIC_URL is not set" in r.getMessage()]
    assert len(warnings) == 1, "said once, not for every image"


def test_an_image_goes_on_the_first_part_of_a_split_sms_only():
    text = "Bonjour " * 500
    parts = reply_parts(Outbound(TEL, text, "fr", image="m1"), "https://x.test/media/t.png")
    assert len(parts) == 3
    assert [part.media_url for part in parts] == ["https://x.test/media/t.png", None, None]
    assert [part.body for part in parts] == bodies(Outbound(TEL, text, "fr"))
    alone = reply_parts(Outbound(TEL, "", "fr", image="m1"), "https://x.test/media/t.png")
    assert [(p.body, p.media_url) for p in alone] == [("", "https://x.test/media/t.png")]
    tree = ET.fromstring(twiml([*parts[:2], *alone]))
    assert [len(m.findall("Media")) for m in tree.iter("Message")] == [1, 0, 1]
    assert tree.findtext("Message/Body").startswith("Bonjour"), "the body stays beside <Media>"
