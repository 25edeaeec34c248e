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


def test_the_signature_check_agrees_with_the_sdks_validate_on_random_requests():
    """A bounded random loop: URLs with and without ports, repeated and odd parameters,
    signatures right (for either URL form), of another token, or tampered with."""
    from random import Random

    from starlette.datastructures import ImmutableMultiDict
    from twilio.request_validator import RequestValidator

    from palabre_twilio.signature import is_signed

    rng, token = Random(20261201), "12345678901234567890123456789012"
    sdk = RequestValidator(token)
    alphabet = "aZ09 &=+%é€ب\n"
    for _ in range(400):
        port = rng.choice(["", ":443", ":8443", ":80"])
        url = f"https://bot.example.org{port}/twilio" + rng.choice(["", "?a=1", "?x=%20"])
        pairs = [
            (rng.choice(["Body", "From", "MediaUrl0", "b", "B"]), _text(rng, alphabet))
            for _ in range(rng.randint(0, 6))
        ]
        params = ImmutableMultiDict(pairs)
        signed_url = rng.choice([url, url.replace(port, ""), url.replace(port, ":443")])
        signature = RequestValidator(rng.choice([token, token[::-1]])).compute_signature(
            signed_url, _SdkParams(params)
        )
        if rng.random() < 0.2:
            signature = signature[:-2] + rng.choice(["A=", "B=", signature[-2:]])
        expected = sdk.validate(url, _SdkParams(params), signature)
        assert is_signed(token, url, params, signature) is expected, (url, pairs, signature)


def _text(rng, alphabet):
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))


class _SdkParams(dict):
    """The multi-valued parameters as the SDK's validate reads them (`getall`)."""

    def __init__(self, params):
        super().__init__({key: params.getlist(key) for key in params})
        self._params = params

    def getall(self, name):
        return self._params.getlist(name)
