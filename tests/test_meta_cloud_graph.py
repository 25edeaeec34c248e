"""Posting to the Graph API and reading its answers: a failure is judged by its error
code, a bad token alerts the operator without showing it, and an API that cannot be
reached is a retryable failure.

The fake Graph API is reached through httpx.ASGITransport; the unreachable API is a
closed loopback port. The fakes and helpers these tests share are in `tests/meta_fakes.py`.
"""

from __future__ import annotations

import logging
import socket

import pytest
from tests.meta_fakes import (
    ACCESS_TOKEN,
    ALICE,
    ALICE_AT,
    graph,
    graph_error,
    settings_for,
    started,
    transport,
)

from palabre.runtime.messages import Outbound

__all__ = ["graph", "transport"]  # fixtures from tests/meta_fakes.py


@pytest.mark.parametrize(
    ("http_status", "code", "retryable", "says"),
    [
        (400, 130429, True, "retry later"),
        (400, 131056, True, "retry later"),
        (400, 131047, False, "send an approved template"),
        (400, 131026, False, "undeliverable"),
        (401, 190, False, "renew META_ACCESS_TOKEN"),
        (200, 131047, False, "template"),  # judged by error.code, whatever the HTTP status
        (400, 100, False, "Graph API error 100"),
    ],
)
@pytest.mark.anyio
async def test_errors_are_handled_by_their_code(
    transport, graph, http_status, code, retryable, says
):
    graph.answers.append((http_status, graph_error(code, f"(#{code}) Something", 2494010)))
    delivery = await transport.send(Outbound(ALICE_AT, "Bonjour", "fr"))
    assert (delivery.status, delivery.provider_id) == ("failed", None)
    assert (delivery.error_code, delivery.retryable) == (str(code), retryable)
    assert says in delivery.detail


@pytest.mark.anyio
async def test_a_bad_token_alerts_the_operator_without_showing_it(transport, graph, caplog):
    graph.answers.append(
        (401, graph_error(190, "Error validating access token: Session has expired", 463))
    )
    with caplog.at_level(logging.INFO):
        await transport.send(Outbound(ALICE_AT, "Bonjour", "fr"))
    alerts = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(alerts) == 1 and "META_ACCESS_TOKEN" in alerts[0].getMessage()
    assert ACCESS_TOKEN not in caplog.text and ALICE not in caplog.text


@pytest.mark.anyio
async def test_an_unreachable_graph_api_is_retryable(tmp_path):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    async with started(settings_for(tmp_path, closed), tmp_path) as meta:
        delivery = await meta.send(Outbound(ALICE_AT, "Bonjour", "fr"))
    assert (delivery.status, delivery.retryable) == ("failed", True)
