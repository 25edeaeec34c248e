"""`X-Twilio-Signature`: forged webhooks are refused, behind a proxy the public URL is
signed, and insecure dev mode skips the check only when there is no auth token.

The fakes and helpers these tests share are in `tests/twilio_fakes.py`.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET

import httpx
import pytest
from tests.twilio_fakes import app_for, messages, post, server, settings_for, sign, webhook

__all__ = ["server"]  # fixtures from tests/twilio_fakes.py


@pytest.mark.parametrize(
    "forge",
    ["changed_byte", "unsigned_extra_param", "wrong_url", "wrong_token", "missing"],
)
def test_a_forged_webhook_is_refused_with_403(server, forge):
    params = webhook("Bonjour")
    url = server.url + "/twilio"
    headers = {"X-Twilio-Signature": sign(url, params)}
    if forge == "changed_byte":
        params["Body"] = "Bonjouq"
    elif forge == "unsigned_extra_param":
        params["ButtonPayload"] = "2"
    elif forge == "wrong_url":
        headers["X-Twilio-Signature"] = sign("https://bot.example.org/twilio", params)
    elif forge == "wrong_token":
        headers["X-Twilio-Signature"] = sign(url, params, token="not-the-token")
    else:
        del headers["X-Twilio-Signature"]
    response = httpx.post(url, data=params, headers=headers)
    assert response.status_code == 403
    assert "Message" not in response.text


def test_behind_a_proxy_the_signature_covers_the_public_url(live_server, tmp_path):
    settings = settings_for(tmp_path, PALABRE_PUBLIC_URL="https://bot.example.org")
    with live_server(app_for(settings)) as running:
        params = webhook("Bonjour")
        signed = post(running.url, params, signed_url="https://bot.example.org/twilio")
        assert post(running.url, webhook("Bonjour")).status_code == 403, "not the local URL"
    assert len(messages(signed)) == 2
    tree = ET.fromstring(signed.content)
    actions = {m.get("action") for m in tree.iter("Message")}
    assert actions == {"https://bot.example.org/twilio/status"}


def test_insecure_dev_without_a_token_accepts_unsigned_webhooks(live_server, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="palabre")
    app = app_for(settings_for(tmp_path, token=None), insecure_dev=True)
    with live_server(app) as running:
        response = httpx.post(running.url + "/twilio", data=webhook("Bonjour"))
    assert len(messages(response)) == 2
    assert "signatures are NOT checked" in caplog.text


def test_insecure_dev_with_a_token_still_checks_signatures(live_server, tmp_path):
    with live_server(app_for(settings_for(tmp_path), insecure_dev=True)) as running:
        response = httpx.post(running.url + "/twilio", data=webhook("Bonjour"))
    assert response.status_code == 403
