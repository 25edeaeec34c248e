"""A Twilio webhook body is a bounded, strictly UTF-8 form: anything else is a 400 (or 413).

The fakes and helpers these tests share are in `tests/twilio_fakes.py`.
"""

from __future__ import annotations

import httpx
import pytest
from tests.twilio_fakes import post, server, webhook

__all__ = ["server"]  # fixtures from tests/twilio_fakes.py


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"From": "+243810000001"}', "application/json"),
        (b"From=%FF%FE&MessageSid=SM1", "application/x-www-form-urlencoded"),
        (b"From=\xff&MessageSid=SM1", "application/x-www-form-urlencoded"),
        (b"From&&MessageSid", "application/x-www-form-urlencoded"),
        (b"", "text/plain"),
    ],
    ids=["json", "bad-percent-utf8", "raw-non-utf8", "not-pairs", "text"],
)
@pytest.mark.parametrize("path", ["/twilio", "/twilio/status"])
def test_a_body_that_is_not_a_form_is_a_400(server, content, content_type, path):
    headers = {"content-type": content_type, "X-Twilio-Signature": "x"}
    response = httpx.post(server.url + path, content=content, headers=headers)
    assert response.status_code == 400


def test_a_huge_body_is_refused(server):
    response = post(server.url, webhook("x" * 70_000))
    assert response.status_code == 413
