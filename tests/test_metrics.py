"""`/metrics`: webhook counts and latency, turns, the outbox depth, sends, and who may read.

Apps are served for real on loopback; the exposition is read with prometheus_client's own
parser, never by matching strings.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.meta_fakes import graph_error
from tests.test_outbox import Graph, outbox_settings, queued, rig
from tests.test_web_app import UIC
from tests.test_web_app import app_for as plain_app
from tests.twilio_fakes import app_for as twilio_app
from tests.twilio_fakes import post, webhook
from tests.twilio_fakes import settings_for as twilio_settings

from palabre.api.queue import Taken
from palabre.config import Settings
from palabre.metrics import Metrics
from palabre.outbox.rows import Queued
from palabre.plugins import make_plugin_manager
from palabre.runtime.messages import Outbound
from palabre.stores.bundle import open_stores
from palabre.web.app import create_app

TOKEN = "metrics-test-token-" + "7" * 32

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of the exposition, by (sample name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def named(found: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: value for (sample, labels), value in found.items() if sample == name}


def scrape(base: str, **headers: str) -> Samples:
    response = httpx.get(f"{base}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


# -- webhooks and turns ----------------------------------------------------------------------


def test_webhooks_are_counted_by_transport_and_status_and_turns_are_timed(live_server, tmp_path):
    with live_server(twilio_app(twilio_settings(tmp_path))) as server:
        assert post(server.url, webhook("Bonjour")).status_code == 200
        forged = webhook("Bonjour")
        refused = httpx.post(
            f"{server.url}/twilio", data=forged, headers={"X-Twilio-Signature": "forged"}
        )
        assert refused.status_code == 403
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        found = scrape(server.url)
    requests = named(found, "palabre_webhook_requests_total")
    assert requests == {
        (("status", "200"), ("transport", "twilio")): 1.0,
        (("status", "403"), ("transport", "twilio")): 1.0,
    }, "one signed and one refused webhook; /healthz and /metrics are not webhooks"
    assert named(found, "palabre_webhook_seconds_count") == {(("transport", "twilio"),): 2.0}
    assert named(found, "palabre_turn_seconds_count") == {(): 1.0}, "the refused one ran no turn"
    assert named(found, "palabre_turn_seconds_sum")[()] > 0


def test_two_apps_in_one_process_keep_their_own_counts(live_server, tmp_path):
    one = twilio_app(twilio_settings(tmp_path / "one"))
    two = twilio_app(twilio_settings(tmp_path / "two"))
    with live_server(one) as first, live_server(two) as second:
        assert post(first.url, webhook("Bonjour")).status_code == 200
        counted, untouched = scrape(first.url), scrape(second.url)
    assert sum(named(counted, "palabre_webhook_requests_total").values()) == 1
    assert named(untouched, "palabre_webhook_requests_total") == {}
    assert named(untouched, "palabre_turn_seconds_count") == {(): 0.0}


# -- the outbox ------------------------------------------------------------------------------


def test_the_outbox_gauge_counts_the_queued_rows(live_server, tmp_path):
    app = plain_app(tmp_path)  # no Twilio transport: nothing claims the rows queued for it
    with live_server(app) as server:
        before = named(scrape(server.url), "palabre_outbox_messages")
        asyncio.run(enqueue(Settings(data_dir=tmp_path), 3))
        after = named(scrape(server.url), "palabre_outbox_messages")
    assert before[(("status", "queued"),)] == 0, "every status is shown, 0 when empty"
    assert after[(("status", "queued"),)] == 3
    assert after[(("status", "sent"),)] == 0


def test_the_events_gauge_counts_the_events_taken_not_yet_started(live_server, tmp_path):
    app = plain_app(tmp_path, workers=False)  # no starter: the events stay queued
    with live_server(app) as server:
        before = named(scrape(server.url), "palabre_events_waiting")
        asyncio.run(take_events(Settings(data_dir=tmp_path), 2))
        after = named(scrape(server.url), "palabre_events_waiting")
    assert before == {(("status", "queued"),): 0, (("status", "starting"),): 0}, "0, not none"
    assert after == {(("status", "queued"),): 2, (("status", "starting"),): 0}


def test_a_database_outage_leaves_the_other_metrics_readable(live_server, tmp_path):
    with live_server(plain_app(tmp_path)) as server:
        with sqlite3.connect(tmp_path / "palabre.db") as database:
            database.execute("DROP TABLE outbox")  # every outbox query fails from now on
            database.execute("DROP TABLE api_events")
        found = scrape(server.url)
    assert named(found, "palabre_outbox_messages") == {}, "an unknown depth is not a 0"
    assert named(found, "palabre_events_waiting") == {}, "nor an unknown backlog"
    assert named(found, "palabre_turn_seconds_count") == {(): 0.0}, "the rest is served"


async def enqueue(settings: Settings, count: int) -> None:
    stores = open_stores(settings)
    try:
        items = [
            Queued(
                Outbound(f"whatsapp:+2438100{n:05d}", "hi", "fr", transport="twilio"),
                f"contact-{n}",
                "start",
                f"key-{n}",
            )
            for n in range(count)
        ]
        await stores.outbox.enqueue(items)
    finally:
        await stores.aclose()


async def take_events(settings: Settings, count: int) -> None:
    stores = open_stores(settings)
    try:
        for n in range(count):
            request = json.dumps(["ticket.called", f"tel:+2438100{n:05d}", None, {}, None])
            taken = Taken(
                "smartqueue", f"T-{n}", f"digest-{n}", "ticket.called", f"c{n}", request, None
            )
            assert await stores.events.take(taken) is None
    finally:
        await stores.aclose()


@pytest.mark.anyio
async def test_the_worker_counts_sends_by_outcome_and_retries(tmp_path):
    graph = Graph()
    metrics = Metrics()
    url = f"sqlite+aiosqlite:///{tmp_path}/palabre.db"
    async with rig(url, outbox_settings(tmp_path), httpx.ASGITransport(app=graph.app)) as r:
        r.host.engine.metrics = metrics
        graph.answers.append((400, graph_error(130429, "(#130429) Rate limit hit")))
        await r.stores.outbox.enqueue([queued(1, "slowly")])
        await r.worker().drain()  # throttled, then sent
        graph.answers.append((503, None))
        await r.stores.outbox.enqueue([queued(2, "patience")])
        await r.worker().drain()  # a retryable error, then sent on the retry
    found = samples(metrics.exposition(None).decode())
    sends = named(found, "palabre_sends_total")
    assert {dict(labels)["outcome"]: value for labels, value in sends.items()} == {
        "throttled": 1.0,
        "retried": 1.0,
        "sent": 2.0,
    }
    assert {dict(labels)["transport"] for labels in sends} == {"meta_cloud"}
    retries = named(found, "palabre_send_retries_total")
    assert retries == {(("transport", "meta_cloud"),): 1.0}, "a throttled resend is no retry"


# -- who may read ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["X-Forwarded-For", "X-Real-IP", "Forwarded"],
    ids=["x-forwarded-for", "x-real-ip", "forwarded"],
)
def test_metrics_are_served_to_loopback_only_by_default(live_server, tmp_path, header):
    app = plain_app(tmp_path)
    value = "for=203.0.113.7" if header == "Forwarded" else "203.0.113.7"
    with live_server(app) as server:
        assert httpx.get(f"{server.url}/metrics").status_code == 200
        proxied = httpx.get(f"{server.url}/metrics", headers={header: value})
        remote = asyncio.run(get_as("203.0.113.7", app))
    assert proxied.status_code == 403, "behind a proxy on this machine, every client looks local"
    assert remote.status_code == 403
    assert "PALABRE_METRICS_TOKEN" in remote.text


async def get_as(client: str, app: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=(client, 50000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://palabre.test") as http:
        return await http.get("/metrics")


def test_with_a_token_metrics_need_it_from_anywhere(live_server, tmp_path):
    settings = Settings.from_env(
        {"PALABRE_SECRET": "s", "PALABRE_DATA_DIR": str(tmp_path), "PALABRE_METRICS_TOKEN": TOKEN},
        env_file=None,
    )
    plugins = make_plugin_manager(disabled=["twilio", "meta_cloud"])
    with live_server(create_app([UIC], settings, plugins=plugins)) as server:
        missing = httpx.get(f"{server.url}/metrics")
        wrong = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer nope"})
        right = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert (missing.status_code, missing.headers["www-authenticate"]) == (401, "Bearer")
    assert wrong.status_code == 401, "loopback is no way around the token"
    assert right.status_code == 200
    families = {family.name for family in text_string_to_metric_families(right.text)}
    assert "palabre_outbox_messages" in families
