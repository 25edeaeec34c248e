"""Two `palabre serve` workers on one Redis and one database: PostgreSQL (each worker with
a data folder of its own), or the embedded SQLite file of a data folder they share.

What one worker records, the other knows: a returning UIC person is recognised, a QR code
made on one is served by the other, and an opt-out recorded on one applies on the other.
A contact's answers alternating between the workers are answered in order, on Twilio
(inline TwiML) as on Meta (both workers' outbox workers sending).
Before the database, each of these lived in a file of one worker's `PALABRE_DATA_DIR`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from tests.conftest import uic_plugins
from tests.meta_fakes import (
    ACCESS_TOKEN,
    PHONE_ID,
    VERIFY_TOKEN,
    FakeGraph,
    change,
    notification,
    text,
    wait_until,
)
from tests.serving import ROOT, start_serve
from tests.test_qr import decode
from tests.turns import HeldTurn, key_of
from twilio.request_validator import RequestValidator

from palabre.config import Settings
from palabre.plugins import make_plugin_manager
from palabre.web.app import create_app
from palabre_meta_cloud.signature import sign

TOKEN = "fedcba9876543210" * 2  # a Twilio auth token is 32 hex characters
ACCOUNT = "AC" + "0" * 32
PUBLIC = "https://bot.example.org"
SECRET = "shared-database-secret-" + "7" * 32
META_SECRET = "0f1e2d3c4b5a6978" * 2  # a Meta app secret is 32 hex characters
ANSWERS = ["Bonjour", "Mbengue", "Ibrahima", "1997", "DA", "1"]


def upgrade(database_url: str) -> None:
    """`palabre db upgrade`, as an operator runs it once before starting the workers."""
    env = {**os.environ, "DATABASE_URL": database_url}
    command = [sys.executable, "-m", "palabre.cli", "db", "upgrade"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@dataclass(frozen=True)
class Shared:
    """Where the workers' durable records live: one PostgreSQL server (each worker with a
    data folder of its own), or the embedded SQLite file of one data folder they share."""

    database_url: str | None
    folders: tuple[Path, Path, Path]

    def env(self) -> dict[str, str]:
        return {"DATABASE_URL": self.database_url} if self.database_url else {}


@pytest.fixture(params=["postgresql", "sqlite"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Shared:
    if request.param == "sqlite":
        return Shared(None, (tmp_path / "shared",) * 3)
    url = str(request.getfixturevalue("postgres_url"))
    upgrade(url)
    return Shared(url, (tmp_path / "one", tmp_path / "two", tmp_path / "three"))


@pytest.fixture
def workers(redis_url: str, shared: Shared) -> Iterator[list[str]]:
    """The base URLs of two workers sharing one Redis and one database."""
    env = {
        "REDIS_URL": redis_url,
        **shared.env(),
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "PALABRE_SECRET": SECRET,
        "PALABRE_PUBLIC_URL": PUBLIC,
        "PALABRE_DISABLE_PLUGINS": "meta_cloud",
        "PALABRE_LOG_LEVEL": "WARNING",
    }
    with ExitStack() as stack:
        urls = []
        for folder in shared.folders[:2]:
            served = start_serve(folder, env)
            stack.callback(served.stop)
            urls.append(served.url)
        yield urls


def post_signed(worker: str, path: str, form: dict[str, str]) -> httpx.Response:
    """POST a form as Twilio does, signed for the public URL both workers sit behind."""
    signature = RequestValidator(TOKEN).compute_signature(f"{PUBLIC}{path}", form)
    headers = {"X-Twilio-Signature": signature}
    response = httpx.post(f"{worker}{path}", data=form, headers=headers, timeout=30)
    assert response.status_code in (200, 204), response.text
    return response


def converse(worker: str, phone: str, prefix: str) -> ET.Element:
    """The UIC conversation on one worker; the TwiML of its last reply."""
    for i, body in enumerate(ANSWERS):
        form = {
            "MessageSid": f"SM{prefix}{i:030d}",
            "AccountSid": ACCOUNT,
            "From": f"whatsapp:{phone}",
            "To": "whatsapp:+14155238886",
            "Body": body,
            "NumMedia": "0",
        }
        reply = post_signed(worker, "/twilio", form)
    return ET.fromstring(reply.text)


def test_a_code_made_on_one_worker_is_recognised_and_its_image_served_by_the_other(workers):
    first = converse(workers[0], "+243810000021", "one")
    assert "MBEIBR7DA1" in "".join(first.itertext())
    assert "existe déjà" not in "".join(first.itertext())
    media_url = first.findtext("Message/Media")
    assert media_url and media_url.startswith(f"{PUBLIC}/media/")

    image = httpx.get(workers[1] + urlsplit(media_url).path, timeout=10)
    assert (image.status_code, image.headers["content-type"]) == (200, "image/png")
    assert decode(image.content) == "MBEIBR7DA1", "the other worker serves the same QR code"

    again = "".join(converse(workers[1], "+243810000021", "two").itertext())
    assert "Votre code MBEIBR7DA1 existe déjà" in again, again


async def allowed_on_a_third_worker(
    shared: Shared, redis_url: str, contacts: list[str]
) -> list[bool]:
    """Start an app on the shared Redis and database: may service messages go to each?"""
    settings = Settings(
        data_dir=shared.folders[2],
        redis_url=redis_url,
        database_url=shared.database_url,
        secrets={"PALABRE_SECRET": SECRET, "TWILIO_AUTH_TOKEN": TOKEN},
        options={"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_WHATSAPP_FROM": "whatsapp:+14155238886"},
    )
    app = create_app(
        [ROOT / "flows" / "uic.yaml"],
        settings,
        plugins=make_plugin_manager(uic_plugins(), entry_points=False),
    )
    async with app.router.lifespan_context(app):
        host = app.state.host
        consent = host.stores.consent
        return [
            await consent.allows(host.contact_key(to), "whatsapp", "service") for to in contacts
        ]


def test_an_opt_out_recorded_on_one_worker_applies_on_the_others(workers, redis_url, shared):
    stopped, other = "whatsapp:+243810000031", "whatsapp:+243810000032"
    callback = {
        "MessageSid": "SM" + "5" * 32,
        "MessageStatus": "undelivered",
        "ErrorCode": "21610",
        "AccountSid": ACCOUNT,
        "From": "whatsapp:+14155238886",
        "To": stopped,
    }
    post_signed(workers[0], "/twilio/status", callback)

    allowed = asyncio.run(allowed_on_a_third_worker(shared, redis_url, [stopped, other]))
    assert allowed == [False, True], "the outbox of every worker sends nothing to the first"


def test_twilio_answers_alternating_between_workers_are_answered_in_order(workers, redis_url):
    """Answers alternate between the workers; each worker answers inline (TwiML)."""
    phone = "+243810000041"
    first = post_signed(workers[0], "/twilio", twilio_form("Bonjour", "SMorder0", phone))
    assert "1/5" in first.text
    with ThreadPoolExecutor(len(ANSWERS)) as pool:
        with HeldTurn(redis_url, key_of(SECRET, f"whatsapp:{phone}")) as held:
            futures = []
            for queued, answer in enumerate(ANSWERS[1:], start=2):
                form = twilio_form(answer, f"SMorder{queued}", phone)
                futures.append(pool.submit(post_signed, workers[queued % 2], "/twilio", form))
                held.wait_for_queue(queued)  # it reached its worker: the next one may go
        replies = [future.result().text for future in futures]
    assert [step in reply for step, reply in zip(STEPS, replies, strict=False)] == [True] * 4
    assert "MBEIBR7DA1" in replies[-1], "each answer was applied in the order it arrived"


def twilio_form(body: str, sid: str, phone: str) -> dict[str, str]:
    return {
        "MessageSid": sid.ljust(34, "0"),
        "AccountSid": ACCOUNT,
        "From": f"whatsapp:{phone}",
        "To": "whatsapp:+14155238886",
        "Body": body,
        "NumMedia": "0",
    }


STEPS = ["2/5", "3/5", "4/5", "5/5"]


@pytest.fixture
def meta_workers(
    redis_url: str, shared: Shared, live_server
) -> Iterator[tuple[list[str], FakeGraph]]:
    """Two workers receiving Meta webhooks, whose outbox workers send to one fake Graph API."""
    graph = FakeGraph()
    with live_server(graph.app) as api, ExitStack() as stack:
        env = {
            "REDIS_URL": redis_url,
            **shared.env(),
            "META_APP_SECRET": META_SECRET,
            "META_ACCESS_TOKEN": ACCESS_TOKEN,
            "META_VERIFY_TOKEN": VERIFY_TOKEN,
            "META_PHONE_NUMBER_ID": PHONE_ID,
            "META_API_BASE": api.url,
            "PALABRE_SECRET": SECRET,
            "PALABRE_DISABLE_PLUGINS": "twilio",
            "PALABRE_LOG_LEVEL": "WARNING",
        }
        urls = []
        for folder in shared.folders[:2]:
            served = start_serve(folder, env)
            stack.callback(served.stop)
            urls.append(served.url)
        yield urls, graph


def post_meta(worker: str, sender: str, wamid: str, body: str) -> None:
    raw = json.dumps(notification(change([text(sender, wamid, body)]))).encode()
    headers = {"X-Hub-Signature-256": sign(META_SECRET.encode(), raw)}
    response = httpx.post(f"{worker}/meta", content=raw, headers=headers, timeout=30)
    assert response.status_code == 200, response.text


def test_meta_replies_arrive_in_order_when_answers_alternate_between_workers(
    meta_workers, redis_url
):
    """Both workers' outbox workers send: the contact's replies still leave in order."""
    (one, two), graph = meta_workers
    wa_id = "243810000042"
    post_meta(one, wa_id, "wamid.ORDER0", "Bonjour")
    wait_until(lambda: len(graph.texts(wa_id)) == 2)
    contact = key_of(SECRET, f"whatsapp:+{wa_id}")
    with ThreadPoolExecutor(len(ANSWERS)) as pool:
        with HeldTurn(redis_url, contact) as held:
            posted = []
            for queued, answer in enumerate(ANSWERS[1:], start=2):
                worker = (one, two)[queued % 2]
                sent = pool.submit(post_meta, worker, wa_id, f"wamid.ORDER{queued}", answer)
                posted.append(sent)
                held.wait_for_queue(queued)
        for sent in posted:
            sent.result()  # each webhook was answered 200
    wait_until(lambda: any("MBEIBR7DA1" in text for text in graph.texts(wa_id)), timeout=30)
    texts = graph.texts(wa_id)[2:]
    assert [step in text for step, text in zip(STEPS, texts, strict=False)] == [True] * 4, texts
    assert "MBEIBR7DA1" in texts[-1] and len(texts) == 5, "in order, each reply once"
