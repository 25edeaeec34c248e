"""Events taken by two `palabre serve` processes on one Redis and one database (PostgreSQL,
or the SQLite file of a data folder they share), started by their starters and sent by
their outbox workers to one fake Twilio: each person's notifications arrive in the order
the events came, each once; and a `palabre worker` killed while it starts an event loses
nothing and sends nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.meta_fakes import wait_until
from tests.serving import ROOT, start_serve
from tests.test_shared_database import ACCOUNT, TOKEN, Shared, shared
from tests.turns import HeldTurn, key_of, wait_for_queue
from tests.twilio_fakes import SMS_FROM, FakeTwilio

__all__ = ["shared"]  # the fixture, from tests/test_shared_database.py

SECRET = "event-workers-secret-" + "8" * 32
FLOW = """\
id: moved
settings: {locales: [fr], default_locale: fr}
triggers: {event: ticket.moved}
steps:
  told: {kind: end, text: "Ticket {{ event.data.n }}"}
"""
PEOPLE = [f"+24381200{n:04d}" for n in range(6)]


@dataclass
class Deployment:
    """The fake Twilio, the settings every process shares, the flows and an API key."""

    fake: FakeTwilio
    env: dict[str, str]
    flows: Path
    key: str

    def palabre(self, folder: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
        """`palabre ARGS` in a process of its own; what it says goes to `log`."""
        command = [sys.executable, "-m", "palabre.cli", *args, "--flows", str(self.flows)]
        env = {**os.environ, **self.env, "PALABRE_DATA_DIR": str(folder)}
        with log.open("ab") as said:
            return subprocess.Popen(command, cwd=ROOT, env=env, stderr=said)

    def post(self, server: str, person: str, n: int) -> None:
        body = {"event": "ticket.moved", "id": f"{person}-{n}", "to": person, "data": {"n": n}}
        headers = {"Authorization": f"Bearer {self.key}"}
        answer = httpx.post(f"{server}/api/v1/events", json=body, headers=headers, timeout=30)
        assert answer.status_code == 202, answer.text

    def texts_to(self, person: str) -> list[str]:
        return [r["form"]["Body"] for r in self.fake.requests if r["form"]["To"] == person]


@pytest.fixture
def deployment(redis_url: str, shared: Shared, live_server, tmp_path: Path) -> Iterator[Deployment]:
    fake = FakeTwilio()
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "moved.yaml").write_text(FLOW, encoding="utf-8")
    with live_server(fake.app) as api:
        env = {
            "REDIS_URL": redis_url,
            **shared.env(),
            "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_ACCOUNT_SID": ACCOUNT,
            "TWILIO_SMS_FROM": SMS_FROM,
            "TWILIO_API_BASE": api.url,
            "PALABRE_SECRET": SECRET,
            "PALABRE_PUBLIC_URL": "https://bot.example.org",
            "PALABRE_DISABLE_PLUGINS": "meta_cloud",
            "PALABRE_LOG_LEVEL": "WARNING",
            "PALABRE_OUTBOX_LEASE": "2",  # a dead worker's claims lapse in 2 s
        }
        command = [sys.executable, "-m", "palabre.cli", "apikey", "create", "queue"]
        full = {**os.environ, **env, "PALABRE_DATA_DIR": str(shared.folders[0])}
        made = subprocess.run(command, cwd=ROOT, env=full, capture_output=True, text=True)
        assert made.returncode == 0, made.stderr
        yield Deployment(fake, env, flows, made.stdout.strip())


def test_events_taken_by_two_servers_reach_each_person_in_order_once(deployment, shared):
    with ExitStack() as stack:
        servers = []
        for folder in shared.folders[:2]:
            served = start_serve(folder, deployment.env, flows=str(deployment.flows))
            stack.callback(served.stop)
            servers.append(served.url)
        for n in range(4):
            for p, person in enumerate(PEOPLE):
                deployment.post(servers[(p + n) % 2], person, n)
        wait_until(lambda: len(deployment.fake.requests) >= 4 * len(PEOPLE), timeout=60)
    expected = [f"Ticket {n}" for n in range(4)]
    assert {p: deployment.texts_to(p) for p in PEOPLE} == dict.fromkeys(PEOPLE, expected)


def test_a_worker_killed_while_it_starts_an_event_loses_nothing_and_sends_nothing_twice(
    deployment, shared, redis_url, tmp_path
):
    held, other = PEOPLE[0], PEOPLE[1]
    with ExitStack() as stack:
        served = start_serve(
            shared.folders[0], deployment.env, flows=str(deployment.flows), args=("--no-worker",)
        )
        stack.callback(served.stop)
        contact = key_of(SECRET, f"tel:{held}")
        with HeldTurn(redis_url, contact):
            for n in range(2):
                deployment.post(served.url, held, n)
            deployment.post(served.url, other, 0)
            first = deployment.palabre(shared.folders[1], tmp_path / "first.log", "worker")
            try:
                wait_for_queue(redis_url, contact, 2)  # its start waits for the held turn
                wait_until(lambda: deployment.texts_to(other) == ["Ticket 0"], timeout=30)
            finally:
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=10)
        second = deployment.palabre(shared.folders[1], tmp_path / "second.log", "worker")
        try:
            wait_until(lambda: len(deployment.texts_to(held)) >= 2, timeout=60)
        finally:
            second.terminate()
            try:  # it lets its sends in flight end first (STOP_GRACE); a busy box is slow
                second.wait(timeout=60)
            except subprocess.TimeoutExpired:
                second.kill()
                raise AssertionError((tmp_path / "second.log").read_text()[-3000:]) from None
    assert deployment.texts_to(held) == ["Ticket 0", "Ticket 1"], "in order, each once"
    assert deployment.texts_to(other) == ["Ticket 0"]
