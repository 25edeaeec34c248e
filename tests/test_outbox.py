"""The durable outbox: order, priority, retries, throttling, unconfirmed sends, crashes.

The sends go through the real Meta transport to a fake Graph API (tests/meta_fakes'
`FakeGraph`, which answers with Meta's documented JSON), reached through
`httpx.ASGITransport`; the crash test runs `palabre worker` in a real subprocess against
a fake Graph API served on loopback. Tests that depend on the database run on SQLite and
on a real PostgreSQL server.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from tests.meta_fakes import (
    ALICE,
    APP_SECRET,
    PHONE_ID,
    UIC,
    FakeGraph,
    change,
    graph_error,
    notification,
    recipient_of,
    settings_for,
    text,
)
from tests.serving import ROOT
from tests.twilio_fakes import app_for as twilio_app
from tests.twilio_fakes import messages as twiml_messages
from tests.twilio_fakes import post as twilio_post
from tests.twilio_fakes import settings_for as twilio_settings
from tests.twilio_fakes import webhook as twilio_webhook

from palabre.bootstrap import build_engine
from palabre.config import Settings
from palabre.db import migrate
from palabre.db.database import Database
from palabre.db.schema import outbox as outbox_table
from palabre.outbox import limits as rate_limits
from palabre.outbox import policy
from palabre.outbox.claims import Claims
from palabre.outbox.commands import line_of
from palabre.outbox.limits import RateLimits
from palabre.outbox.rows import Queued
from palabre.outbox.store import Outbox
from palabre.outbox.windows import Seen
from palabre.outbox.worker import Worker
from palabre.runtime.messages import Outbound
from palabre.stores.bundle import Stores
from palabre.transports import Host
from palabre_meta_cloud import MetaCloudTransport
from palabre_meta_cloud.signature import sign

SECRET = b"outbox-test-secret-" + b"0" * 32


def address(n: int) -> str:
    return f"whatsapp:+2438100{n:05d}"


def queued(n: int, body: str, kind: str = "start", **options: Any) -> Queued:
    """A message for contact `n`, keyed by its text (each text is used once per test)."""
    message = Outbound(address(n), body, "fr", transport="meta_cloud")
    return Queued(message, f"contact-{n}", kind, f"key-{body}", **options)


class Graph(FakeGraph):
    """The fake Graph API, with what these tests watch: when each /messages request came,
    how many of one contact were in flight at once, and requests it may hold or refuse."""

    def __init__(self, limit: str | None = None) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, str, str]] = []  # (time, recipient, text)
        self.in_flight: dict[str, int] = {}
        self.most_in_flight = 0
        self.refused = 0
        self.limiter = MovingWindowRateLimiter(MemoryStorage()) if limit else None
        self.limit = parse(limit) if limit else None
        self.app.router.routes.insert(
            0, Route("/{version}/{phone}/messages", self.watched, methods=["POST"])
        )

    async def watched(self, request: Request) -> JSONResponse:
        body = await request.json()
        who = recipient_of(body)
        self.arrivals.append((time.time(), who, body.get("text", {}).get("body", "")))
        if self.limiter and self.limit and not await self.limiter.hit(self.limit, PHONE_ID):
            self.refused += 1  # Meta's answer beyond the number's throughput
            return JSONResponse(graph_error(130429, "(#130429) Rate limit hit"), 400)
        if self.answers and self.answers[0][1] is None:  # a proxy's 5xx, no JSON
            status_code, _ = self.answers.pop(0)
            return PlainTextResponse("Service Unavailable", status_code)  # type: ignore[return-value]
        self.in_flight[who] = self.in_flight.get(who, 0) + 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight[who])
        try:
            await asyncio.sleep(0.002)  # a provider takes a moment: lets sends overlap
            return await self.messages(_replayed(request, body))
        finally:
            self.in_flight[who] -= 1

    def texts_to(self, n: int) -> list[str]:
        who = address(n).removeprefix("whatsapp:+")
        return [body for _, to, body in self.arrivals if to == who]


def _replayed(request: Request, body: dict[str, Any]) -> Request:
    """The request again, its body already read (FakeGraph.messages reads it once more)."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}

    return Request(request.scope, receive)


class LosingAnswers(httpx.AsyncBaseTransport):
    """Between the client and the fake Graph API: refuses to connect for the texts in
    `unreachable`, and loses the answer (after the provider got the request) for those in
    `lost`, as a read timeout does."""

    def __init__(self, app: Starlette) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.unreachable: list[str] = []
        self.lost: set[str] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        content = request.content.decode()
        refused = [t for t in self.unreachable if f'"{t}"' in content]
        if refused:  # once: the next attempt connects
            self.unreachable.remove(refused[0])
            raise httpx.ConnectError("connection refused", request=request)
        response = await self.inner.handle_async_request(request)
        if any(f'"{text}"' in content for text in self.lost):
            raise httpx.ReadTimeout("timed out", request=request)
        return response


class ContactsWhoWrote(Outbox):
    """The outbox of these tests, whose WhatsApp contacts all wrote just before their rows
    were queued: their 24-hour window is open (tests/test_whatsapp_window.py shuts it)."""

    async def enqueue(
        self, items: list[Queued], *, replacing: str | None = None, seen: Seen | None = None
    ) -> list[str]:
        for key, via in sorted({(item.contact_key, item.transport) for item in items}):
            await super().enqueue([], seen=Seen(key, via))
        return await super().enqueue(items, replacing=replacing, seen=seen)


@dataclass
class Rig:
    """One worker's world: its stores, its host (the Meta transport started on it)."""

    stores: Stores
    host: Host
    meta: MetaCloudTransport

    def worker(self, **options: Any) -> Worker:
        options.setdefault("poll", 0.02)
        return Worker(self.host, self.stores.outbox, **options)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/palabre.db"
    url = str(request.getfixturevalue("postgres_url"))
    return url.replace("postgresql://", "postgresql+psycopg://")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/palabre.db"


def outbox_settings(
    tmp_path: Path, graph_url: str = "http://graph.test", **options: str
) -> Settings:
    settings = settings_for(tmp_path, graph_url)
    settings.options |= {"PALABRE_OUTBOX_BACKOFF": "0.01", **options}
    return settings


@asynccontextmanager
async def rig(
    url: str,
    settings: Settings,
    http_transport: httpx.AsyncBaseTransport,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[Rig]:
    """Stores on `url` (migrated), and the Meta transport sending through `http_transport`."""
    database = Database(url)
    await migrate.upgrade(database)
    stores = Stores.on(database, SECRET, clock)
    stores.outbox = ContactsWhoWrote(database, clock)
    engine = build_engine([UIC], settings, stores=stores)
    async with httpx.AsyncClient(transport=http_transport, base_url="http://graph.test") as http:
        meta = MetaCloudTransport()
        host = Host(engine, settings, http, transports={meta.name: meta})
        await meta.startup(host)
        try:
            yield Rig(stores, host, meta)
        finally:
            await meta.shutdown()
            await engine.aclose()


# -- order and priority ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_two_workers_keep_each_contacts_order_one_in_flight(postgres_url, tmp_path):
    graph = Graph()
    url = postgres_url.replace("postgresql://", "postgresql+psycopg://")
    settings = outbox_settings(tmp_path)
    http = httpx.ASGITransport(app=graph.app)
    async with rig(url, settings, http) as one, rig(url, settings, http) as two:
        items = [queued(n, f"m{n}-{i}") for i in range(6) for n in range(4)]
        await one.stores.outbox.enqueue(items)
        await asyncio.gather(one.worker().drain(), two.worker().drain())
        await one.worker().drain()  # what the first finished waiting for, if anything
    for n in range(4):
        assert graph.texts_to(n) == [f"m{n}-{i}" for i in range(6)], "in the order queued"
    assert graph.most_in_flight == 1, "never two messages of one contact at once"
    assert len(graph.arrivals) == 24, "each sent once"


@pytest.mark.anyio
async def test_replies_go_before_bulk_sends(sqlite_url, tmp_path):
    graph = Graph()
    async with rig(sqlite_url, outbox_settings(tmp_path), httpx.ASGITransport(app=graph.app)) as r:
        for n in range(5):  # broadcasts go only to those who opted in
            await r.stores.consent.record(f"contact-{n}", "broadcast", True, "import")
        await r.stores.outbox.enqueue([queued(n, f"news{n}", "broadcast") for n in range(5)])
        await r.stores.outbox.enqueue([queued(9, "answer", "reply")])
        await r.worker(concurrency=1).drain()
    assert graph.arrivals[0][2] == "answer"
    assert len(graph.arrivals) == 6


# -- retries, throttling, permanent failures -------------------------------------------------


def test_backoff_grows_fourfold_with_jitter():
    rules = policy.RetryPolicy(attempts=3, backoff=5.0)
    for failures, base in ((1, 5.0), (2, 20.0), (3, 80.0)):
        delay = rules.retry_delay(failures)
        assert base * 0.8 <= delay <= base * 1.2


@pytest.mark.anyio
async def test_retryable_errors_are_retried_up_to_the_cap(database_url, tmp_path):
    graph = Graph()
    graph.answers += [(503, None)] * 2  # then the third attempt is accepted
    settings = outbox_settings(tmp_path)
    async with rig(database_url, settings, httpx.ASGITransport(app=graph.app)) as r:
        [uid] = await r.stores.outbox.enqueue([queued(1, "patience")])
        await r.worker().drain()
        row = await r.stores.outbox.get(uid)
        assert (row.status, row.attempts, row.provider_id) == ("sent", 2, "wamid.OUT1")
        assert graph.texts_to(1) == ["patience"] * 3
        graph.answers += [(503, None)] * 5
        [uid] = await r.stores.outbox.enqueue([queued(2, "doomed")])
        await r.worker().drain()
        row = await r.stores.outbox.get(uid)
        gave_up = await gave_up_on(r.stores, uid)
    assert (row.status, row.attempts) == ("failed", 3), "three attempts, then failed"
    assert gave_up == 1, "failed on passing errors only: `broadcast retry-failed` may try again"
    assert graph.texts_to(2) == ["doomed"] * 3


@pytest.mark.anyio
async def test_being_throttled_never_uses_up_an_attempt(database_url, tmp_path):
    graph = Graph()
    graph.answers += [(400, graph_error(130429, "(#130429) Rate limit hit"))] * 2
    graph.answers += [(400, graph_error(131056, "(#131056) Pair rate limit hit"))] * 2
    async with rig(
        database_url, outbox_settings(tmp_path), httpx.ASGITransport(app=graph.app)
    ) as r:
        [uid] = await r.stores.outbox.enqueue([queued(1, "slowly")])
        await r.worker().drain()
        row = await r.stores.outbox.get(uid)
    assert (row.status, row.attempts) == ("sent", 0), "four refusals, no attempt used"
    assert graph.texts_to(1) == ["slowly"] * 5


@pytest.mark.anyio
async def test_a_permanent_error_is_final_and_listed_as_failed(sqlite_url, tmp_path):
    graph = Graph()
    graph.answers.append((400, graph_error(131026, "(#131026) Message undeliverable")))
    async with rig(sqlite_url, outbox_settings(tmp_path), httpx.ASGITransport(app=graph.app)) as r:
        [uid, later] = await r.stores.outbox.enqueue([queued(1, "lost"), queued(1, "next")])
        await r.worker().drain()
        [row] = await r.stores.outbox.failed()
        assert await gave_up_on(r.stores, uid) == 0, "refused for good: never tried again"
    assert (row.uid, row.status, row.attempts, row.error_code) == (uid, "failed", 1, "131026")
    assert graph.texts_to(1) == ["lost", "next"], "no retry; the contact's next one follows"
    listing = palabre("messages", "failed", env={"DATABASE_URL": sqlite_url})
    assert uid in listing and "131026" in listing and "undeliverable" in listing
    assert later not in listing, "only the rows that need a look"
    assert ALICE not in listing and "8100001" not in listing and "lost" not in listing.split()
    assert line_of(row) in listing


async def gave_up_on(stores: Stores, uid: str) -> int | None:
    """The row's `gave_up` mark: 1 when it failed on retryable errors only."""
    query = select(outbox_table.c.gave_up).where(outbox_table.c.uid == uid)
    return await stores.database.run(lambda conn: conn.execute(query).scalar_one())


def run_palabre(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the `palabre` command with the test secret and `env`; however it ends."""
    full = {**os.environ, "PALABRE_SECRET": SECRET.decode(), **env}
    command = [sys.executable, "-m", "palabre.cli", *args]
    return subprocess.run(command, cwd=ROOT, env=full, capture_output=True, text=True, timeout=60)


def palabre(*args: str, env: dict[str, str]) -> str:
    """Run the `palabre` command, which must succeed; its standard output."""
    done = run_palabre(*args, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


# -- ambiguous sends ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_lost_answer_is_unconfirmed_and_never_resent(database_url, tmp_path):
    graph = Graph()
    network = LosingAnswers(graph.app)
    network.lost.add("Bienvenue")
    network.unreachable.append("Encore")  # refused before it left: retried, sent once
    async with rig(database_url, outbox_settings(tmp_path), network) as r:
        first, second = await r.stores.outbox.enqueue([queued(1, "Bienvenue"), queued(1, "Encore")])
        await r.worker().drain()
        await r.worker().drain()  # a second pass finds nothing to resend
        welcome, again = await r.stores.outbox.get(first), await r.stores.outbox.get(second)
        flagged = await r.stores.outbox.failed()
    assert graph.texts_to(1) == ["Bienvenue", "Encore"], "each reached the provider once"
    assert (welcome.status, welcome.error_code) == ("unconfirmed", "no_answer")
    assert (again.status, again.attempts) == ("sent", 1)
    assert [row.uid for row in flagged] == [first], "unconfirmed is visible"


@pytest.mark.anyio
async def test_a_lapsed_claim_is_requeued_unless_its_send_had_started(sqlite_url, tmp_path):
    clock = Clock()
    database = Database(sqlite_url)
    await migrate.upgrade(database)
    box = Outbox(database, clock)
    await box.enqueue([queued(1, "never-started"), queued(2, "started")])
    dead = Claims(box, "dead-worker", lease=30)
    claimed = await dead.claim(10, ["meta_cloud"])
    assert {row.contact_key for row in claimed} == {"contact-1", "contact-2"}
    await dead.start(next(row for row in claimed if row.contact_key == "contact-2"))
    assert await Claims(box, "alive", lease=30).reap() == 0, "the lease still holds"
    clock.now += 31
    assert await Claims(box, "alive", lease=30).reap() == 2
    statuses = {row.contact_key: row.status for row in await box.rows()}
    await database.aclose()
    assert statuses == {"contact-1": "queued", "contact-2": "unconfirmed"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_767_225_600.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.anyio
async def test_an_expired_message_is_not_sent(sqlite_url, tmp_path):
    graph = Graph()
    async with rig(sqlite_url, outbox_settings(tmp_path), httpx.ASGITransport(app=graph.app)) as r:
        [uid, _] = await r.stores.outbox.enqueue(
            [queued(1, "too late", expires_at=time.time() - 1), queued(1, "in time")]
        )
        await r.worker().drain()
        row = await r.stores.outbox.get(uid)
    assert row.status == "expired"
    assert graph.texts_to(1) == ["in time"]


# -- status callbacks -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_status_callbacks_move_rows_forward_only(database_url, tmp_path):
    graph = Graph()
    network = LosingAnswers(graph.app)
    network.lost.add("maybe")
    async with rig(database_url, outbox_settings(tmp_path), network) as r:
        box, log = r.stores.outbox, r.stores.messages
        sent, maybe = await box.enqueue([queued(1, "hello"), queued(2, "maybe")])
        await r.worker().drain()
        wamid = (await box.get(sent)).provider_id
        seen = []
        for status in ("delivered", "sent", "queued", "read", "delivered"):
            await log.status(wamid, status)  # as the Twilio and Meta callbacks apply them
            seen.append((await box.get(sent)).status)
        await box.status(None, maybe, "delivered", None)  # a late word on an unconfirmed row
        confirmed = (await box.get(maybe)).status
        await box.status(None, maybe, "sent", None)
        still = (await box.get(maybe)).status
    assert seen == ["delivered", "delivered", "delivered", "read", "read"]
    assert (confirmed, still) == ("delivered", "delivered")


@pytest.mark.anyio
async def test_a_callback_before_the_worker_records_the_send_is_kept(sqlite_url, tmp_path):
    database = Database(sqlite_url)
    await migrate.upgrade(database)
    stores = Stores.on(database, SECRET)
    [uid] = await stores.outbox.enqueue([queued(1, "fast")])
    claims = Claims(stores.outbox, "w", lease=30)
    [row] = await claims.claim(1, ["meta_cloud"])
    await stores.messages.status("wamid.FAST", "delivered", channel="meta_cloud")
    await claims.record(row, policy.Outcome("sent", 0, provider_id="wamid.FAST"))
    status = (await stores.outbox.get(uid)).status
    await stores.aclose()
    assert status == "delivered", "the worker's `sent` does not undo the callback"


# -- webhooks -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_meta_replies_survive_a_crash_after_the_200(database_url, tmp_path):
    """The webhook answers 200 once the replies are rows; this process then dies before
    its worker sends anything; a worker elsewhere sends them, in order."""
    graph = Graph()
    settings = outbox_settings(tmp_path)
    async with rig(database_url, settings, httpx.ASGITransport(app=graph.app)) as crashed:
        app = Starlette(routes=crashed.meta.routes())
        payload = notification(change([text(ALICE, "wamid.IN1", "Bonjour")]))
        body = json.dumps(payload).encode()
        headers = {"X-Hub-Signature-256": sign(APP_SECRET.encode(), body)}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
            answer = await client.post("http://bot.test/meta", content=body, headers=headers)
        assert answer.status_code == 200 and graph.requests == []
    async with rig(database_url, settings, httpx.ASGITransport(app=graph.app)) as elsewhere:
        await elsewhere.worker().drain()
    welcome, question = [body for _, _, body in graph.arrivals]
    assert question.startswith("1/5") and "1/5" not in welcome


def test_a_redelivered_twilio_message_gets_its_replies_again(live_server, tmp_path):
    settings = twilio_settings(tmp_path)
    with live_server(twilio_app(settings)) as server:
        params = twilio_webhook("Bonjour")
        first = twiml_messages(twilio_post(server.url, params))
        again = twiml_messages(twilio_post(server.url, params))
        rows = asyncio.run(_rows(server))
    assert len(first) == 2 and again == first
    assert [(row.kind, row.status) for row in rows] == [("reply", "sent")] * 2, "logged once"


async def _rows(server: Any) -> list[Any]:
    return list(reversed(await server.server.config.app.state.host.stores.outbox.rows()))


# -- rate limits ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_sender_never_exceeds_its_rate_in_any_one_second_window(sqlite_url, tmp_path):
    rate, count = 20, 60
    graph = Graph(limit=f"{rate}/second")  # Meta's own check: 130429 beyond the rate
    settings = outbox_settings(tmp_path, PALABRE_RATE_META=f"{rate}/second")
    async with rig(sqlite_url, settings, httpx.ASGITransport(app=graph.app)) as r:
        await r.stores.outbox.enqueue([queued(n, f"hi{n}") for n in range(count)])
        began = time.time()
        await r.worker().drain()
    times = sorted(at for at, _, _ in graph.arrivals)
    busiest = max(sum(1 for t in times if start <= t < start + 1) for start in times)
    assert graph.refused == 0 and len(times) == count, "the provider never had to refuse"
    assert busiest <= rate
    assert times[-1] - began >= (count / rate) - 1, "60 at 20/s take at least two seconds"


class StalledStore(MemoryStorage):
    """A rate-limit store that never answers: whoever asks it waits on the limiter."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = asyncio.Event()

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        self.asked.set()
        await asyncio.Event().wait()  # never set
        raise AssertionError("unreachable")


@pytest.mark.anyio
async def test_a_worker_that_dies_waiting_on_the_limiter_leaves_its_row_queued(
    database_url, tmp_path
):
    graph = Graph()
    settings = outbox_settings(tmp_path)
    async with rig(database_url, settings, httpx.ASGITransport(app=graph.app)) as r:
        [uid] = await r.stores.outbox.enqueue([queued(1, "patience")])
        store = StalledStore()
        worker = asyncio.create_task(r.worker(limits=RateLimits(settings, store)).run())
        await asyncio.wait_for(store.asked.wait(), 30)
        # The worker dies here, waiting; its lease lapses; a worker alive looks after it.
        later = Outbox(r.stores.outbox.database, clock=lambda: time.time() + 61)
        reaped = await Claims(later, "survivor", lease=60).reap()
        row = await r.stores.outbox.get(uid)
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    assert reaped == 1
    assert (row.status, row.attempts) == ("queued", 0), "nothing was sent: queued again"
    assert graph.arrivals == []


@pytest.mark.anyio
async def test_a_row_the_limiter_gives_back_keeps_its_attempts(sqlite_url, tmp_path):
    clock, graph = Clock(), Graph()
    settings = outbox_settings(tmp_path, PALABRE_PACE_PER_CONTACT="1/minute")
    limits = RateLimits(settings, clock=clock)
    async with rig(sqlite_url, settings, httpx.ASGITransport(app=graph.app), clock) as r:
        [uid] = await r.stores.outbox.enqueue([queued(1, "again")])
        await _set(r.stores.outbox.database, uid, attempts=1)  # one attempt failed before
        assert limits.pace and await limits.limiter.hit(limits.pace, "contact-1")
        draining = asyncio.create_task(r.worker(limits=limits).drain())
        given_back = await _when(r.stores.outbox.database, uid, next_attempt_at=clock.now + 60)
        clock.now += 60.001  # the recipient's minute has passed
        await draining
        row = await r.stores.outbox.get(uid)
    assert (given_back["status"], given_back["attempts"]) == ("queued", 1)
    assert given_back["send_started_at"] is None and graph.texts_to(1) == ["again"]
    assert (row.status, row.attempts) == ("sent", 1), "waiting used up no attempt"


async def _set(database: Database, uid: str, **values: Any) -> None:
    from sqlalchemy import update

    from palabre.db.schema import outbox

    async with database.write() as conn:
        await conn.execute(update(outbox).where(outbox.c.uid == uid).values(**values))


async def _when(database: Database, uid: str, **wanted: Any) -> dict[str, Any]:
    """The row `uid` once its columns hold `wanted` (a worker in another task writes it)."""
    from sqlalchemy import select

    from palabre.db.schema import outbox

    for _ in range(1500):
        async with database.read() as conn:
            found = (await conn.execute(select(outbox).where(outbox.c.uid == uid))).one()
        row = dict(found._mapping)
        if all(row[name] == value for name, value in wanted.items()):
            return row
        await asyncio.sleep(0.02)
    raise AssertionError(f"row {uid} never had {wanted}")


def test_malformed_outbox_settings_are_refused_at_start(tmp_path):
    settings = Settings(
        options={
            "PALABRE_RATE_META": "fast",
            "PALABRE_PACE_PER_CONTACT": "0/minute",
            "PALABRE_OUTBOX_ATTEMPTS": "three",
            "PALABRE_OUTBOX_LEASE": "0.5",
        }
    )
    found = rate_limits.problems(settings) + policy.problems(settings)
    assert [line.split("=")[0] for line in found] == [
        "PALABRE_PACE_PER_CONTACT",
        "PALABRE_RATE_META",
        "PALABRE_OUTBOX_ATTEMPTS",
        "PALABRE_OUTBOX_LEASE",
    ]
    assert RateLimits(Settings()).rate_for("twilio", "tel:+243810000001") == parse("10/second")


# -- a worker killed mid-send ----------------------------------------------------------------


class HoldingGraph(Graph):
    """Holds the request whose text is HOLD until `release` is set (a thread event)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    async def watched(self, request: Request) -> JSONResponse:
        body = await request.json()
        if body.get("text", {}).get("body") == "HOLD":
            self.arrivals.append((time.time(), recipient_of(body), "HOLD"))
            while not self.release.is_set():
                await asyncio.sleep(0.01)
            return await self.messages(_replayed(request, body))
        return await super().watched(_replayed(request, body))


def wait_for(condition: Callable[[], bool], what: str, logs: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            said = "".join(p.read_text() for p in sorted(logs.glob("*.log")))
            raise AssertionError(f"timed out waiting for {what}; the workers said:\n{said}")
        time.sleep(0.02)


@pytest.fixture
def worker_env(tmp_path: Path) -> Iterator[Callable[[str, str], dict[str, str]]]:
    def env(database_url: str, graph_url: str) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": database_url,
            "PALABRE_DATA_DIR": str(tmp_path / "worker"),
            "PALABRE_SECRET": secrets.token_hex(32),
            "META_APP_SECRET": secrets.token_hex(16),
            "META_ACCESS_TOKEN": "EAA" + secrets.token_hex(40),
            "META_VERIFY_TOKEN": secrets.token_hex(8),
            "META_PHONE_NUMBER_ID": PHONE_ID,
            "META_API_BASE": graph_url,
            "PALABRE_DISABLE_PLUGINS": "twilio",
            "PALABRE_OUTBOX_LEASE": "2",
        }

    yield env


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`palabre worker` in a process of its own; what it says goes to `log`."""
    command = [sys.executable, "-m", "palabre.cli", "worker", "--flows", str(UIC)]
    with log.open("ab") as said:
        return subprocess.Popen(command, cwd=ROOT, env=env, stderr=said)


def test_a_worker_killed_mid_send_loses_nothing_and_sends_nothing_twice(
    live_server, postgres_url, worker_env, tmp_path
):
    graph = HoldingGraph()
    url = postgres_url.replace("postgresql://", "postgresql+psycopg://")
    items = [queued(1, t) for t in ("a1", "HOLD", "a3", "a4")] + [
        queued(2, t) for t in ("b1", "b2", "b3")
    ]
    asyncio.run(_enqueue(url, items))
    with live_server(graph.app) as provider:
        env = worker_env(postgres_url, provider.url)
        first = start_worker(env, tmp_path / "first.log")
        try:
            # Killed while the provider holds HOLD, once contact 2 is done: a3 and a4,
            # queued behind HOLD, are what a lost worker must not lose.
            held = lambda: "HOLD" in graph.texts_to(1)  # noqa: E731
            others = lambda: asyncio.run(_statuses(url))  # noqa: E731
            wait_for(
                lambda: held() and {others()[t] for t in ("b1", "b2", "b3")} == {"sent"},
                "the held request",
                tmp_path,
            )
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        graph.release.set()  # the provider answers a worker that is gone
        second = start_worker(env, tmp_path / "second.log")
        try:
            wait_for(lambda: settled(asyncio.run(_statuses(url))), "every row settled", tmp_path)
            rows = asyncio.run(_statuses(url))
        finally:
            second.terminate()
            second.wait(timeout=20)
    assert graph.texts_to(1) == ["a1", "HOLD", "a3", "a4"], "in order, each once"
    assert graph.texts_to(2) == ["b1", "b2", "b3"]
    assert rows["HOLD"] == "unconfirmed", "it may have arrived: never resent blindly"
    assert {text: s for text, s in rows.items() if text != "HOLD"} == dict.fromkeys(
        ["a1", "a3", "a4", "b1", "b2", "b3"], "sent"
    )


def settled(statuses: dict[str, str]) -> bool:
    """Every row sent or unconfirmed: nothing queued nor being sent."""
    return not {"queued", "sending"} & set(statuses.values())


async def _enqueue(url: str, items: list[Queued]) -> None:
    database = Database(url)
    await migrate.upgrade(database)
    await ContactsWhoWrote(database).enqueue(items)
    await database.aclose()


async def _statuses(url: str) -> dict[str, str]:
    """Each row's status, by its message text (read from the row, as a test may)."""
    from sqlalchemy import select

    from palabre.db.schema import outbox

    database = Database(url)
    try:
        async with database.read() as conn:
            rows = (await conn.execute(select(outbox.c.payload, outbox.c.status))).all()
    finally:
        await database.aclose()
    return {json.loads(payload)["text"]: status for payload, status in rows}
