"""Two `palabre serve` processes on one Redis: a delivery both receive is processed once."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from tests.conftest import free_port
from tests.serving import Served, start_serve
from tests.turns import HeldTurn, key_of, wait_for_queue
from twilio.request_validator import RequestValidator

from palabre.config import Settings
from palabre.stores.bundle import open_stores
from palabre_dhis2.queue import RegistrationQueue

TOKEN = "0123456789abcdef" * 2  # a Twilio auth token is 32 hex characters
PUBLIC = "https://bot.example.org"
SECRET = "workers-secret-" + "0" * 32


def start_worker(redis_url: str, data_dir: Path, **extra: str) -> Served:
    env = {
        "REDIS_URL": redis_url,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "PALABRE_SECRET": SECRET,
        "PALABRE_PUBLIC_URL": PUBLIC,
        "PALABRE_DISABLE_PLUGINS": "meta_cloud",
        "PALABRE_LOG_LEVEL": "WARNING",
        **extra,
    }
    return start_serve(data_dir, env)


@pytest.fixture
def workers(redis_url, tmp_path):
    with ExitStack() as stack:
        urls = []
        for _ in range(2):
            served = start_worker(redis_url, tmp_path)
            stack.callback(served.stop)
            urls.append(served.url)
        yield urls


def signed(body: str, sid: str, phone: str = "+243810000009") -> tuple[dict, dict]:
    form = {
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": f"whatsapp:{phone}",
        "To": "whatsapp:+14155238886",
        "Body": body,
        "NumMedia": "0",
    }
    signature = RequestValidator(TOKEN).compute_signature(f"{PUBLIC}/twilio", form)
    return form, {"X-Twilio-Signature": signature}


def test_one_delivery_received_by_two_workers_is_processed_once(workers):
    form, headers = signed("Bonjour", "SMdup0000000000000000000000000001")
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda url: httpx.post(f"{url}/twilio", data=form, headers=headers, timeout=10),
                workers * 4,
            )
        )
    assert all(a.status_code == 200 for a in answers)
    replies = [a.text for a in answers if "<Message" in a.text]
    # The turn ran once; a redelivery is answered with that turn's replies again, from the
    # outbox of the worker that ran it (each worker here has a database of its own).
    assert len(replies) >= 1 and len(set(replies)) == 1, "one turn's replies, never two"


def test_a_conversation_alternating_between_workers_keeps_its_state(workers):
    script = ["Bonjour", "Mbengue", "Ibrahima", "1997", "DA", "1"]
    last = ""
    for i, body in enumerate(script):
        form, headers = signed(body, f"SMalt{i:030d}", phone="+243810000010")
        last = httpx.post(f"{workers[i % 2]}/twilio", data=form, headers=headers).text
    assert "MBEIBR7DA1" in last


def test_answers_sent_to_two_workers_are_applied_in_the_order_they_arrived(workers, redis_url):
    """The audit's burst: answers alternate between workers and must apply in order."""
    phone = "+243810000011"
    assert "1/5" in send(workers[0], "Bonjour", "SMord1", phone)
    answers = ["Mbengue", "Ibrahima", "1997", "DA", "1"]
    with ThreadPoolExecutor(len(answers)) as pool:
        with HeldTurn(redis_url, key_of(SECRET, f"whatsapp:{phone}")) as held:
            futures = []
            for queued, answer in enumerate(answers, start=2):
                worker, sid = workers[queued % 2], f"SMord{queued}"
                futures.append(pool.submit(send, worker, answer, sid, phone))
                held.wait_for_queue(queued)
        replies = [future.result() for future in futures]
    assert ["2/5" in replies[0], "3/5" in replies[1], "4/5" in replies[2], "5/5" in replies[3]] == [
        True
    ] * 4, replies
    assert "MBEIBR7DA1" in replies[-1], "every worker applied the answers in arrival order"


def send(worker: str, body: str, sid: str, phone: str) -> str:
    form, headers = signed(body, sid, phone)
    answer = httpx.post(f"{worker}/twilio", data=form, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.text


class DribblingServer:
    """A DHIS-2 that accepts requests, then sends its answer one byte every half second."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.called = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        self.called.set()
        with contextlib.suppress(OSError):
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" * 10:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.5)

    def __enter__(self) -> DribblingServer:
        self._thread.start()
        start = asyncio.start_server(self._answer, "127.0.0.1", self.port)
        self._server = asyncio.run_coroutine_threadsafe(start, self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _stop(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def test_a_dribbling_dhis2_cannot_let_a_resent_message_run_the_same_turn_twice(redis_url, tmp_path):
    """The audit's case: DHIS-2 dribbles its answer; the resend must not run alongside."""
    phone = "+243810000012"
    dhis2 = {"DHIS2_URL": "", "DHIS2_TOKEN": "d2pat_" + "a" * 40, "DHIS2_VERSION": "2.41"}
    with DribblingServer() as slow, ExitStack() as stack:
        dhis2["DHIS2_URL"] = slow.url
        urls = []
        for _ in range(2):
            served = start_worker(redis_url, tmp_path, **dhis2)
            stack.callback(served.stop)
            urls.append(served.url)
        for i, answer in enumerate(["Bonjour", "Mbengue", "Ibrahima", "1997", "DA"]):
            send(urls[0], answer, f"SMslow{i}", phone)
        key = key_of(SECRET, f"whatsapp:{phone}")
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(send, urls[0], "1", "SMslowlast", phone)
            wait_for_queue(redis_url, key, 1)  # the first delivery's turn is in DHIS-2
            resent = pool.submit(send, urls[1], "1", "SMslowlast", phone)
            wait_for_queue(redis_url, key, 2)  # the resend waits behind it
            replies = [first.result(), resent.result()]
    assert "MBEIBR7DA1" in replies[0] and "finalisé sous peu" in replies[0], replies[0]
    # A duplicate, not a second turn: the resend is answered with the first turn's replies.
    assert replies[1] == replies[0], "the resend is a duplicate, not a second turn"
    assert "already" not in replies[1]
    assert asyncio.run(queued_in(tmp_path)) == 1, "the slow registration was queued for retry"


async def queued_in(data_dir: Path) -> int:
    """How many DHIS-2 registrations wait in the workers' embedded database."""
    stores = open_stores(Settings(data_dir=data_dir))
    try:
        return await RegistrationQueue(stores.tasks).count()
    finally:
        await stores.aclose()


def test_a_worker_killed_mid_turn_leaves_the_resent_message_a_new_code_not_a_returning_one(
    redis_url, tmp_path
):
    """The audit's crash: the turn registered the code, then its worker died in DHIS-2.

    The provider resends the message to the other worker, which runs the turn again. It must
    find its own earlier registration (same turn), not tell a new person "already registered".
    """
    phone = "+243810000013"
    dhis2 = {"DHIS2_TOKEN": "d2pat_" + "a" * 40, "DHIS2_VERSION": "2.41"}
    with DribblingServer() as slow, ExitStack() as stack:
        workers = [start_worker(redis_url, tmp_path, DHIS2_URL=slow.url, **dhis2) for _ in range(2)]
        for served in workers:
            stack.callback(served.stop)
        for i, answer in enumerate(["Bonjour", "Mbengue", "Ibrahima", "1997", "DA"]):
            send(workers[0].url, answer, f"SMkill{i}", phone)
        with ThreadPoolExecutor(1) as pool:
            doomed = pool.submit(post_quietly, workers[0].url, "1", "SMkilllast", phone)
            assert slow.called.wait(30), "the turn reached DHIS-2, past the registry"
            workers[0].process.kill()
            doomed.result()
        resent = send(workers[1].url, "1", "SMkilllast", phone)
    assert "MBEIBR7DA1" in resent and "finalisé sous peu" in resent, resent
    assert "existe déjà" not in resent


def post_quietly(worker: str, body: str, sid: str, phone: str) -> None:
    """Post, expecting the worker to die before it answers."""
    form, headers = signed(body, sid, phone)
    with contextlib.suppress(httpx.HTTPError):
        httpx.post(f"{worker}/twilio", data=form, headers=headers, timeout=30)
