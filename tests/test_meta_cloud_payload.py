"""A whole Meta notification body, read before any work: its cost is linear in its size,
malformed bodies are a 400 (never a 500), unknown fields are tolerated, and changes for
another phone number are skipped.

The fakes and helpers these tests share are in `tests/meta_fakes.py`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import pytest
from tests.meta_fakes import (
    ALICE,
    ALICE_AT,
    BSUID,
    PHONE_ID,
    change,
    graph,
    meta,
    notification,
    outbox_rows,
    post,
    status,
    text,
    wait_until,
)

from palabre_meta_cloud.payload import read_notification

__all__ = ["graph", "meta"]  # fixtures from tests/meta_fakes.py


# -- cost -------------------------------------------------------------------------------


def executed_lines(work: Callable[[], object]) -> int:
    """How many lines of Python `work` runs (sys.settrace): its cost, whatever the machine."""
    count = 0

    def trace(frame: Any, event: str, arg: Any) -> Any:
        nonlocal count
        count += event == "line"
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        work()
    finally:
        sys.settrace(previous)
    return count


def many_updates(count: int) -> bytes:
    """`count` distinct statuses in one change (a duplicate check by list was quadratic)."""
    updates = [status(f"wamid.S{i}", "delivered") for i in range(count)]
    return json.dumps(notification(change(statuses=updates))).encode()


def many_changes(count: int) -> bytes:
    """`count` changes of one message each (a duplicate set rebuilt per change was quadratic)."""
    return json.dumps(
        notification(*[change([text(ALICE, f"wamid.M{i}", "x")]) for i in range(count)])
    ).encode()


@pytest.mark.parametrize("body_of", [many_updates, many_changes])
def test_reading_a_body_costs_in_proportion_to_its_size(body_of):
    small, large = body_of(1000), body_of(2000)
    cost = [
        executed_lines(lambda body=body: read_notification(body, PHONE_ID))
        for body in (small, large)
    ]
    assert cost[1] < 2.2 * cost[0], f"twice the items cost {cost[1] / cost[0]:.1f} times as much"
    read = read_notification(large, PHONE_ID)
    assert len(read.statuses) + len(read.inbounds) == 2000, "all kept: none is a duplicate"


# -- what is read -----------------------------------------------------------------------


def test_status_recipients_become_canonical_addresses():
    by_number = status("wamid.1", "sent")
    by_user_id = {k: v for k, v in status("wamid.2", "sent").items() if k != "recipient_id"}
    by_user_id["recipient_user_id"] = BSUID
    body = json.dumps(notification(change(statuses=[by_number, by_user_id]))).encode()
    recipients = [update.recipient for update in read_notification(body, PHONE_ID).statuses]
    assert recipients == [ALICE_AT, f"whatsapp-user:{BSUID}"]


def test_changes_for_another_phone_number_are_skipped(meta, graph, tmp_path):
    other = change([text(ALICE, "wamid.X", "Bonjour")], phone_id="999")
    assert post(meta, notification(other)).status_code == 200
    assert outbox_rows(tmp_path) == 0, "no turn ran, so no reply was queued"
    assert graph.requests == []


# -- refused and malformed bodies --------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"\xff\xfe{}",
        b"[]",
        b"null",
        b"{}",
        b'{"object": "whatsapp_business_account", "entry": {}}',
        b'{"entry": ["x"]}',
        b'{"entry": [{"changes": {}}]}',
        b'{"entry": [{"changes": [{"field": "messages", "value": []}]}]}',
        b'{"entry": [{"changes": [{"value": {"messages": {}}}]}]}',
        b'{"entry": [{"changes": [{"value": {"messages": ["hi"]}}]}]}',
        b'{"entry": [{"changes": [{"value": {"messages": [{"from": "1", "type": "text"}]}}]}]}',
        b'{"entry": [{"changes": [{"value": {"messages": [{"from": "1", "id": "w", "type": "text", "text": "hi"}]}}]}]}',
        b'{"entry": [{"changes": [{"value": {"messages": [{"from": "1", "id": "w", "type": "location", "location": {"latitude": "x"}}]}}]}]}',
        b'{"entry": [{"changes": [{"value": {"statuses": {"id": "w"}}}]}]}',
        b'{"entry": [{"changes": [{"value": {"statuses": [{"status": "read"}]}}]}]}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"entry": [], "n": ' + b"9" * 5000 + b"}",
        b'{"entry": [], "n": NaN}',
        b'{"entry": [], "n": 1e999}',
        json.dumps(notification(change([text("\udfff", "wamid.LS1", "hi")]))).encode(),
        json.dumps(notification(change([text(ALICE, "wamid.\udfff", "hi")]))).encode(),
        json.dumps(notification(change([text(ALICE, "wamid.LS2", "hi")])))
        .encode()
        .replace(ALICE.encode(), b"\xed\xbf\xbf"),
    ],
    ids=lambda raw: None if len(raw) < 60 else f"{raw[:20]!r}...({len(raw)} bytes)",
)
def test_malformed_bodies_are_answered_400_never_500(meta, graph, raw):
    response = post(meta, None, raw=raw)
    assert response.status_code == 400, response.text


def test_unknown_fields_objects_and_changes_are_tolerated(meta, graph):
    hello = text(ALICE, "wamid.U1", "Bonjour") | {"context": {"forwarded": True}, "new_field": [1]}
    payload = notification(change([hello]) | {"extra": 1}) | {"whatever": {"x": 1}}
    payload["entry"].append(
        {"id": "1", "time": 1, "changes": [{"field": "account_update", "value": {"event": "X"}}]}
    )
    assert post(meta, payload).status_code == 200
    assert post(meta, {"object": "page", "entry": []}).status_code == 200
    wait_until(lambda: len(graph.requests) == 2)
