"""Two `palabre serve` processes on one Redis: a delivery both receive is processed once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from tests.serving import Served, start_serve
from twilio.request_validator import RequestValidator

TOKEN = "workers-test-token"
PUBLIC = "https://bot.example.org"


def start_worker(redis_url: str, data_dir: Path) -> Served:
    env = {
        "REDIS_URL": redis_url,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "PALABRE_SECRET": "workers-secret-" + "0" * 32,
        "PALABRE_PUBLIC_URL": PUBLIC,
        "PALABRE_DISABLE_PLUGINS": "meta_cloud",
        "PALABRE_LOG_LEVEL": "WARNING",
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
    assert len(replies) == 1, "exactly one worker answers the duplicate deliveries"


def test_a_conversation_alternating_between_workers_keeps_its_state(workers):
    script = ["Bonjour", "Mbengue", "Ibrahima", "1997", "DA", "1"]
    last = ""
    for i, body in enumerate(script):
        form, headers = signed(body, f"SMalt{i:030d}", phone="+243810000010")
        last = httpx.post(f"{workers[i % 2]}/twilio", data=form, headers=headers).text
    assert "MBEIBR7DA1" in last
