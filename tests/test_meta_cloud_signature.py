"""`X-Hub-Signature-256`: a body is processed only when it is signed as sent, and insecure
dev mode (no app secret) says loudly that it skips the check.

The fakes and helpers these tests share are in `tests/meta_fakes.py`.
"""

from __future__ import annotations

import json
import logging

import httpx
from tests.meta_fakes import (
    ALICE,
    APP_SECRET,
    app_for,
    change,
    graph,
    meta,
    notification,
    outbox_rows,
    post,
    settings_for,
    text,
    wait_until,
)

from palabre_meta_cloud.signature import sign

__all__ = ["graph", "meta"]  # fixtures from tests/meta_fakes.py


def test_unsigned_or_wrongly_signed_bodies_are_refused(meta, graph, tmp_path):
    payload = notification(change([text(ALICE, "wamid.S1", "Bonjour")]))
    body = json.dumps(payload).encode()
    flipped = body.replace(b"Bonjour", b"Bonjous")
    respaced = json.dumps(payload, indent=2).encode()
    wrong_key = sign(b"another-secret", body)
    assert post(meta, None, raw=body, signature="").status_code == 403
    assert post(meta, None, raw=body, signature=wrong_key).status_code == 403
    assert (
        post(meta, None, raw=body, signature=sign(APP_SECRET.encode(), body)[7:]).status_code == 403
    )
    assert (
        post(meta, None, raw=flipped, signature=sign(APP_SECRET.encode(), body)).status_code == 403
    )
    assert (
        post(meta, None, raw=respaced, signature=sign(APP_SECRET.encode(), body)).status_code == 403
    )
    assert outbox_rows(tmp_path) == 0, "a refused body queues no reply"
    assert graph.requests == [], "a refused body must reach nothing"
    assert post(meta, None, raw=respaced).status_code == 200, "signed as sent, any spacing is fine"


def test_insecure_dev_starts_loudly_and_skips_the_signature(live_server, graph, tmp_path, caplog):
    settings = settings_for(tmp_path, graph.url, META_APP_SECRET=True)
    app = app_for(settings, insecure_dev=True, http=graph.client())
    unsigned = notification(change([text(ALICE, "wamid.D1", "Bonjour")]))
    with caplog.at_level(logging.WARNING), live_server(app) as server:
        client = httpx.Client(base_url=server.url)
        assert post(client, unsigned, signature="").status_code == 200
        wait_until(lambda: len(graph.requests) == 2)
        client.close()
    assert "webhook signatures are NOT checked" in caplog.text
