"""`palabre start FLOW --to ADDRESS`: a flow's first message reaches a contact who wrote
nothing, through the outbox, sent by `palabre worker` to the provider."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.serving import ROOT
from tests.twilio_fakes import FakeTwilio

ACCOUNT = "AC" + "3" * 32
TOKEN = "c0ffee00" * 4
TICKET = """\
id: ticket
settings: {locales: [fr, en], default_locale: fr}
steps:
  called:
    kind: ask
    text: "Ticket {{ params.number }} : c'est votre tour au guichet {{ params.desk }}. Vous venez ?"
    choices: [{id: "oui", title: "Oui"}, {id: "non", title: "Non"}]
    save_as: coming
  bye: {kind: end, text: "Merci, à tout de suite au guichet {{ params.desk }}."}
"""


def palabre(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "palabre.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, cwd=cwd, timeout=60)


def test_a_started_flow_is_queued_once_per_key_and_sent_by_the_worker(tmp_path, live_server):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "ticket.yaml").write_text(textwrap.dedent(TICKET))
    fake = FakeTwilio()
    with live_server(fake.app) as api:
        env = {
            **os.environ,
            "PALABRE_SECRET": "starts-test-secret-" + "5" * 32,
            "PALABRE_DATA_DIR": str(tmp_path / "data"),
            "PALABRE_DEFAULT_REGION": "CD",
            "PALABRE_DISABLE_PLUGINS": "meta_cloud",
            "TWILIO_ACCOUNT_SID": ACCOUNT,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_SMS_FROM": "+15005550006",
            "TWILIO_API_BASE": api.url,
        }
        start = ["start", "ticket", "--to", "0812345678", "--flows", str(flows)]
        start += ["--param", "number=A9", "--param", "desk=4", "--id", "ticket-A9"]
        first = palabre(*start, env=env, cwd=tmp_path)
        again = palabre(*start, env=env, cwd=tmp_path)
        assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
        assert first.stdout == again.stdout, "the same key queues the same row, once"
        assert "0812345678" not in first.stdout and "243812345678" not in first.stdout
        (uid,) = [line.split()[1] for line in first.stdout.splitlines()]

        worker = subprocess.Popen(
            [sys.executable, "-m", "palabre.cli", "worker", "--flows", str(flows)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 30
            while not fake.requests:  # polled: the worker sends when it is up
                assert worker.poll() is None, worker.communicate()[1].decode()
                assert time.monotonic() < deadline, "the worker sent nothing"
                time.sleep(0.05)
        finally:
            worker.terminate()
            worker.wait(timeout=15)
        listing = palabre("messages", env=env, cwd=tmp_path)
    (sent,) = fake.requests
    assert sent["form"]["To"] == "+243812345678", "the national number, in E.164"
    assert sent["form"]["From"] == "+15005550006"
    assert sent["form"]["Body"].startswith("Ticket A9 : c'est votre tour au guichet 4.")
    assert "1. Oui" in sent["form"]["Body"] and "2. Non" in sent["form"]["Body"]
    (row,) = [line for line in listing.stdout.splitlines() if uid in line]
    assert row.split()[1:6] == [uid, "twilio", "start", "service", "sent"], row
