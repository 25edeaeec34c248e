"""Many, slow and big bodies at once must not exhaust the server nor hold its event loop.

Each body is capped by its endpoint (tests/test_webhook_hardening.py); here many of them
arrive together. The app holds at most its `BodyBudget` of body bytes at once: a request
whose next chunk does not fit is refused at once with 503 and Retry-After, and a body that
does not arrive whole before the deadline gets 408; either way its bytes are released and
the connection closed. A signed Meta body with tens of thousands of statuses is processed
while /healthz goes on answering.

The flood and the big body go to a real `palabre serve` (tests/serving.py); the deadline
and the budget are made small in an app served by uvicorn in this process, so that the
tests can watch `budget.held` and need not wait for the real deadline.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
from starlette.applications import Starlette
from tests.conftest import LiveServer, uic_plugins
from tests.test_webhook_hardening import (
    MB,
    PHONE_ID,
    SENDER,
    Running,
    assert_no_traceback,
    meta_signed,
    palabre_serve,
)

import palabre_meta_cloud
from palabre.config import Settings
from palabre.plugins import make_plugin_manager
from palabre.web.app import create_app
from palabre.web.body import BODY_DEADLINE, RETRY_AFTER_SECONDS, BodyBudget

UIC = Path(__file__).parent.parent / "flows" / "uic.yaml"
NOWHERE = "http://127.0.0.1:9"  # no Graph API: nothing here is ever sent


# -- raw HTTP, to hold a body half sent -------------------------------------------------------


def half_sent(url: str, path: str, declared: int, sent: int, headers: str = "") -> socket.socket:
    """A POST declaring `declared` bytes of body whose first `sent` bytes only are sent;
    `headers`: more header lines, each ending in CRLF."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=120)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"{headers}Content-Length: {declared}\r\n\r\n"
    )
    with suppress(OSError):  # refused while still sending: its answer is read next
        sock.sendall(head.encode() + b"x" * sent)
    return sock


def answer_of(sock: socket.socket) -> tuple[int, str]:
    """The status and the (lower-cased) head the server answered on `sock`, which is
    closed; (0, "") when the connection ended with no answer."""
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    finally:
        sock.close()
    head = data.split(b"\r\n\r\n")[0].decode("latin-1").lower()
    parts = head.split(" ", 2)
    return (int(parts[1]), head) if len(parts) > 1 and parts[1].isdecimal() else (0, "")


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


def meta_app(data_dir: Path, budget: BodyBudget | None = None) -> Starlette:
    """The app serving flows/uic.yaml through the Meta transport, with `budget`."""
    secrets = {
        "PALABRE_SECRET": "5f" * 32,
        "META_APP_SECRET": "load-app-secret-0123456789",
        "META_ACCESS_TOKEN": "EAAload-access-token",
        "META_VERIFY_TOKEN": "load-verify-token",
    }
    options = {"META_PHONE_NUMBER_ID": PHONE_ID, "META_API_BASE": NOWHERE}
    settings = Settings(data_dir=data_dir, secrets=secrets, options=options)
    manager = make_plugin_manager(uic_plugins(palabre_meta_cloud), entry_points=False)
    return create_app([UIC], settings, plugins=manager, body_budget=budget)


@contextmanager
def served_app(budget: BodyBudget, tmp_path: Path) -> Iterator[str]:
    """The Meta app with `budget`, served by uvicorn in this process; yields its URL."""
    with LiveServer(meta_app(tmp_path / "data", budget)) as server:
        yield server.url


# -- one app, one budget ------------------------------------------------------------------------


def test_a_body_still_dribbling_at_the_deadline_is_refused_408_and_released(tmp_path):
    budget = BodyBudget(deadline=0.5)
    with served_app(budget, tmp_path) as url:
        sock = half_sent(url, "/meta", declared=MB, sent=1000)
        sent = 1000
        # A byte at a time, for as long as the server listens: a deadline on the whole
        # body (not on silence) ends it, though bytes keep coming.
        while not select.select([sock], [], [], 0.02)[0] and sent < MB - 1:
            sock.sendall(b"x")
            sent += 1
        status, head = answer_of(sock)
        health = httpx.get(f"{url}/healthz")
    assert status == 408, f"a body still coming after the deadline is refused ({head!r})"
    assert "connection: close" in head, "and its connection is let go"
    assert budget.held == 0, "its bytes are released"
    assert health.text == "ok"


def test_a_body_the_budget_cannot_hold_is_refused_503_at_once_then_room_is_made(tmp_path):
    budget = BodyBudget(max_held=240_000, deadline=600)
    with served_app(budget, tmp_path) as url:
        holder = half_sent(url, "/meta", declared=250_000, sent=200_000)
        wait_until(lambda: budget.held == 200_000, "the first body is held")
        late_status, late_head = answer_of(half_sent(url, "/meta", 60_000, 60_000))
        assert budget.held == 200_000, "the refused body reserved nothing"
        holder.close()
        wait_until(lambda: budget.held == 0, "the first body is released when its client goes")
        after_status, _ = answer_of(half_sent(url, "/meta", 60_000, 60_000))
    assert late_status == 503, f"no room: refused at once, not made to wait ({late_head!r})"
    assert f"retry-after: {RETRY_AFTER_SECONDS}" in late_head, "providers are told to retry"
    assert "connection: close" in late_head
    assert after_status == 403, "with room again, the body is read (then refused: unsigned)"
    assert budget.held == 0


def test_each_app_has_its_own_budget(tmp_path):
    first, second = meta_app(tmp_path / "one"), meta_app(tmp_path / "two")
    assert first.state.body_budget is not second.state.body_budget


# -- a real server, flooded -------------------------------------------------------------------

SLOW_BODIES = 200  # 500 MB of unfinished bodies in all, against a budget of 64 MiB


def test_many_slow_unsigned_bodies_keep_memory_bounded_and_are_all_refused(tmp_path):
    with palabre_serve(tmp_path) as server:
        before = server.rss_mb()
        socks = [
            half_sent(server.url, "/meta", declared=3 * MB - 1, sent=5 * MB // 2)
            for _ in range(SLOW_BODIES)
        ]
        grown = server.rss_mb() - before
        health = httpx.get(f"{server.url}/healthz", timeout=60)
        answers = [answer_of(sock) for sock in socks]  # the held ones at the deadline
        statuses = Counter(status for status, _ in answers)
        healthy_after = httpx.get(f"{server.url}/healthz", timeout=60)
        stderr = server.stop()
    assert grown < 150, f"slow bodies were held beyond the budget: +{grown:.0f} MB"
    assert health.text == "ok", "the server answers while the slow bodies are held"
    assert set(statuses) <= {503, 408}, f"every slow body is refused: {statuses}"
    assert statuses[503] > 0, f"those beyond the budget are refused at once: {statuses}"
    assert statuses[408] > 0, f"those held are refused at the {BODY_DEADLINE:g} s deadline"
    assert all(f"retry-after: {RETRY_AFTER_SECONDS}" in h for s, h in answers if s == 503)
    assert healthy_after.text == "ok"
    assert_no_traceback(stderr)


# -- a real server, one big signed body -----------------------------------------------------------

STATUSES = 30_000
# Each status kept is a database write: 30,000 of them take minutes on a small machine, so
# the body repeats each of these many, and the test stays short. (That reading the body is
# linear in its size is tested in tests/test_meta_cloud_payload.py, without a clock.)
DISTINCT = 2_000


def many_statuses(count: int, distinct: int) -> bytes:
    """A Meta body (under its 3 MB cap) with `count` statuses for `distinct` messages."""
    updates = [
        {"id": f"wamid.S{i % distinct}", "status": "delivered", "timestamp": "1"}
        | {"recipient_id": SENDER}
        for i in range(count)
    ]
    value = {"metadata": {"phone_number_id": PHONE_ID}, "statuses": updates}
    change = {"field": "messages", "value": value}
    document = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]}
    return json.dumps(document, separators=(",", ":")).encode()


def test_a_body_with_thirty_thousand_statuses_is_processed_while_healthz_answers(tmp_path):
    body = many_statuses(STATUSES, DISTINCT)
    assert len(body) < 3 * MB
    with palabre_serve(tmp_path) as server:
        big: dict[str, httpx.Response] = {}
        sender = threading.Thread(target=lambda: big.update(answer=post_big(server, body)))
        sender.start()
        wait_until(lambda: "webhook received" in server.served.stderr, "the body is parsed", 600)
        health = httpx.get(f"{server.url}/healthz", timeout=600)
        still_working = sender.is_alive()
        sender.join(timeout=900)
        stderr = server.stop()
    assert health.text == "ok"
    assert still_working, "/healthz is answered while the big body's statuses are recorded"
    assert big["answer"].status_code == 200, big["answer"].text
    assert f"statuses={DISTINCT}" in stderr, "every status is read, each recorded once"
    assert_no_traceback(stderr)


def post_big(server: Running, body: bytes) -> httpx.Response:
    return httpx.post(f"{server.url}/meta", content=body, headers=meta_signed(body), timeout=900)
