"""`palabre broadcast`, whole: a CSV of parents, consent imported, `palabre serve` sending
to a fake Twilio capped like an account, the broadcast process killed at 40 % and resumed,
and a parent who sends STOP halfway. Everything runs as real processes on loopback; the
fake counts what reached it, so "exactly once" is counted where it matters."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import httpx
from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.requests import Request
from starlette.routing import Route
from tests.serving import ROOT, start_serve
from tests.twilio_fakes import ACCOUNT, FakeTwilio, messages, sign, webhook

PARENTS = 300
CAP = "30/second"  # the feeder keeps 5 s (147 messages) ahead: at the kill, 40 lines wait
KILL_AT = 120  # 40 % of the parents
STOPPER = 290  # the parent (a line's index) who sends STOP halfway, before their line starts
SMS_FROM = "+15005550006"
TOKEN = "c0ffee00" * 4  # an Auth Token's length


def post(base: str, params: dict[str, str]) -> httpx.Response:
    """An inbound SMS webhook, signed as Twilio signs it."""
    url = f"{base}/twilio"
    headers = {"X-Twilio-Signature": sign(url, params, TOKEN)}
    return httpx.post(url, data=params, headers=headers, timeout=20)


def number(n: int) -> str:
    return f"+24381{n:07d}"


class CappedTwilio(FakeTwilio):
    """Twilio's Messages resource behind an account's cap: a request beyond `cap` in any
    second is refused (429, Twilio's 20429) and counted; `tripped` is set once `kill_at`
    messages were accepted."""

    def __init__(self, cap: str, kill_at: int) -> None:
        super().__init__()
        self.cap, self.kill_at = parse(cap), kill_at
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.refused = 0
        self.tripped = threading.Event()
        path = "/2010-04-01/Accounts/{account}/Messages.json"
        self.app.router.routes.insert(0, Route(path, self.capped, methods=["POST"]))

    async def capped(self, request: Request):
        if not await self.limiter.hit(self.cap, "account"):
            self.refused += 1
            return self.error(429, 20429, "Too Many Requests")
        response = await self.create(request)
        if len(self.sids) >= self.kill_at:
            self.tripped.set()
        return response

    def received(self) -> Counter[str]:
        return Counter(request["form"]["To"] for request in self.requests)

    def bodies_to(self, to: str) -> list[str]:
        return [r["form"]["Body"] for r in self.requests if r["form"]["To"] == to]


def write_audience(path: Path) -> None:
    lines = ["telephone;langue;child;class"]
    for n in range(PARENTS):
        language = ("fr", "ar", "en")[n % 3]
        lines.append(f"{number(n)};{language};Enfant {n};CM{n % 2 + 1}")
    lines.append("0812;fr;Nobody;CP")  # invalid
    lines.append(f"{number(0)};fr;Enfant 0;CM1")  # a duplicate of the first parent
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def palabre(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "palabre.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, cwd=cwd, timeout=120)


def test_a_broadcast_killed_at_40_percent_and_resumed_reaches_everyone_exactly_once(
    tmp_path, live_server
):
    audience, consented = tmp_path / "parents.csv", tmp_path / "consent.csv"
    write_audience(audience)
    # Two parents never agreed: everyone else signed the school's form.
    agreed = [number(n) for n in range(PARENTS) if n not in (7, 8)]
    consented.write_text("address\n" + "\n".join(agreed) + "\n", encoding="utf-8")
    fake = CappedTwilio(CAP, KILL_AT)
    with live_server(fake.app) as api:
        env = {
            **os.environ,
            "PALABRE_SECRET": "broadcast-test-secret-" + "7" * 32,
            "PYTHONUNBUFFERED": "",  # the command flushes what a killed process must have said
            "PALABRE_DATA_DIR": str(tmp_path / "data"),
            "PALABRE_DEFAULT_REGION": "CD",
            "PALABRE_DISABLE_PLUGINS": "meta_cloud",
            "PALABRE_RATE_TWILIO_SMS": CAP,
            "TWILIO_ACCOUNT_SID": ACCOUNT,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_SMS_FROM": SMS_FROM,
            "TWILIO_API_BASE": api.url,
        }
        imported = palabre("contacts", "consent-import", str(consented), env=env, cwd=ROOT)
        assert imported.returncode == 0, imported.stderr
        assert (
            f"broadcast granted for {PARENTS - 2} of {PARENTS - 2} valid lines" in imported.stdout
        ), imported.stdout
        served = start_serve(tmp_path / "data", env, flows="flows")
        try:
            broadcast_id = _broadcast_killed_then_resumed(fake, served.url, audience, env)
        finally:
            log = served.stop()
        status = palabre("broadcast", "status", broadcast_id, "--json", env=env, cwd=ROOT)
        listing = palabre(
            "messages", "--broadcast", broadcast_id, "--json", "--limit", "999", env=env, cwd=ROOT
        )

    received = fake.received()
    never = {number(7), number(8), number(STOPPER)}
    for n in range(PARENTS):
        expected = 0 if number(n) in never else 1
        assert received[number(n)] == expected, f"parent {n} got {received[number(n)]} messages"
    assert sum(received.values()) == PARENTS - 3, "nobody outside the audience got anything"
    assert fake.refused == 0, "the account's cap was never exceeded"
    assert "Enfant 3" in fake.bodies_to(number(3))[0] and "CM2" in fake.bodies_to(number(3))[0]
    assert any("\u0600" <= c <= "\u06ff" for c in fake.bodies_to(number(1))[0]), "in Arabic"

    report = json.loads(status.stdout)
    assert report["finished"] is True and report["waiting"] == 0
    assert report["skipped"] == {"duplicate": 1, "invalid": 1, "no_consent": 3}, report
    assert report["messages"] == {"sent": PARENTS - 3}, report
    rows = [json.loads(line) for line in listing.stdout.splitlines()]
    assert len(rows) == PARENTS - 3 and {r["kind"] for r in rows} == {"broadcast"}
    assert "+24381" not in listing.stdout + status.stdout, "no number in the listings"
    assert "+24381" not in log, "no number in the server's log"


def _broadcast_killed_then_resumed(
    fake: CappedTwilio, base: str, audience: Path, env: dict[str, str]
) -> str:
    command = [sys.executable, "-m", "palabre.cli", "broadcast", "school_notice"]
    command += ["--to", str(audience), "--param", "date=3 décembre", "--yes"]
    command += ["--param", "message=Réunion des parents à 17 h."]
    first = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert fake.tripped.wait(timeout=90), "the broadcast never reached 40 %"
    finally:
        first.send_signal(signal.SIGKILL)
    out, err = first.communicate(timeout=30)
    assert f"{PARENTS - 2} recipients of {PARENTS + 2} lines" in out, out + err
    started = re.search(r"^broadcast ([0-9a-f]+) started", out, re.MULTILINE)
    assert started, out + err
    broadcast_id = started.group(1)

    # Halfway, a parent whose line has not started yet says STOP, then starts a flow.
    stopper = number(STOPPER)
    stopped = messages(post(base, webhook("STOP", stopper, To=SMS_FROM)))
    assert "plus nos annonces" in stopped[0], stopped
    answered = messages(post(base, webhook("school", stopper, To=SMS_FROM)))
    assert "annonces aux parents" in answered[0], "a flow they start is answered (service consent)"

    resumed = palabre("broadcast", "resume", broadcast_id, env=env, cwd=ROOT)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"broadcast {broadcast_id} finished" in resumed.stdout
    return broadcast_id


def test_ctrl_c_pauses_a_broadcast_with_nothing_lost(tmp_path):
    """No worker runs here: the broadcast queues its few seconds ahead and waits. Ctrl-C
    stops it starting lines; what is queued stays queued, the rest waits for resume."""
    audience = tmp_path / "parents.csv"
    rows = [f"{number(n)},Enfant {n},CM1" for n in range(30)]
    audience.write_text("address,child,class\n" + "\n".join(rows) + "\n", encoding="utf-8")
    env = {
        **os.environ,
        "PALABRE_SECRET": "broadcast-test-secret-" + "8" * 32,
        "PALABRE_DATA_DIR": str(tmp_path / "data"),
        "PALABRE_DEFAULT_REGION": "CD",
        "PALABRE_DISABLE_PLUGINS": "meta_cloud",
        "PALABRE_RATE_TWILIO_SMS": "1/second",  # 10 messages ahead at most
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_SMS_FROM": SMS_FROM,
    }
    assert palabre("contacts", "consent-import", str(audience), env=env, cwd=ROOT).returncode == 0
    command = ["broadcast", "school_notice", "--to", str(audience), "--param", "date=lundi"]
    command += ["--param", "message=Pas de cours."]
    unasked = palabre(*command, env=env, cwd=ROOT)  # no terminal, no --yes
    assert unasked.returncode == 2 and "pass --yes" in unasked.stderr, unasked.stderr
    missing = palabre("broadcast", "status", "0000", env=env, cwd=ROOT)
    assert missing.returncode == 2 and "no broadcast '0000'" in missing.stderr

    running = subprocess.Popen(
        [sys.executable, "-m", "palabre.cli", *command, "--yes"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert running.stdout is not None
    said = ""
    while "started" not in said:  # up to the line naming the broadcast
        line = running.stdout.readline()
        assert line, "the broadcast ended before it started"
        said += line
    started = re.search(r"^broadcast ([0-9a-f]+) started", said, re.MULTILINE)
    assert started, said + (running.stderr.read() if running.stderr else "")
    broadcast_id = started.group(1)
    queued = _wait_for_queued(broadcast_id, 10, env)
    running.send_signal(signal.SIGINT)
    out, _ = running.communicate(timeout=30)
    assert running.returncode == 130, out
    assert "paused: 20 lines not started, 10 messages still queued" in out, out
    assert f"palabre broadcast resume {broadcast_id}" in out
    after = json.loads(palabre("broadcast", "status", broadcast_id, "--json", env=env,
                               cwd=ROOT).stdout)  # fmt: skip
    assert after["waiting"] == 20 and after["messages"] == {"queued": 10} == queued
    listed = palabre("broadcast", "list", env=env, cwd=ROOT).stdout
    assert broadcast_id in listed and "30 lines  20 lines waiting" in listed, listed
    twice = palabre(*command, "--yes", env=env, cwd=ROOT)
    assert twice.returncode == 2, "the same broadcast is not started twice by mistake"
    assert f"palabre broadcast resume {broadcast_id}` goes on with it" in twice.stderr


def _wait_for_queued(broadcast_id: str, count: int, env: dict[str, str]) -> dict[str, int]:
    """Poll the status until `count` messages are queued (the feeder's look-ahead)."""
    for _ in range(100):
        status = palabre("broadcast", "status", broadcast_id, "--json", env=env, cwd=ROOT)
        report = json.loads(status.stdout)
        if sum(report["messages"].values()) >= count:
            return report["messages"]
    raise AssertionError(f"the broadcast never queued {count} messages: {report}")
