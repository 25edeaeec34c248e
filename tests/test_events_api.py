"""The events API over real HTTP on loopback: `POST /api/v1/events` with a key made by
`palabre apikey create`, to a flow triggered by the event, which the app's own starter
runs and whose SMS its worker sends to a fake Twilio; `GET /api/v1/events/{id}` telling
what became of it; every refusal a problem document naming what is wrong; the OpenAPI
document held to the routes."""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from tests.serving import ROOT
from tests.test_webhook_load import half_sent
from tests.twilio_fakes import SMS_FROM, FakeTwilio, settings_for, sign

import palabre_twilio
from palabre import builtins
from palabre.api.keys import ApiKeys, key_hasher
from palabre.api.openapi import EXAMPLE
from palabre.config import SECRET
from palabre.db.database import Database
from palabre.errors import StoreUnavailable
from palabre.plugins import make_plugin_manager
from palabre.stores.sqlite import SQLiteSessionStore
from palabre.web.app import create_app
from palabre.web.body import BodyBudget

TICKET = """\
id: ticket_called
title: Your turn
settings: {locales: [fr, en], default_locale: fr}
triggers: {event: ticket.called}
steps:
  called:
    kind: ask
    text: "Ticket {{ event.data.ticket }} : c'est votre tour au guichet {{ event.data.counter }}."
    choices: [{id: "keep", title: "Je viens"}]
    save_as: answer
  bye: {kind: end, text: "Merci, le guichet {{ event.data.counter }} vous attend."}
"""
PERSON = "+243812345678"


def event(**fields: object) -> dict[str, object]:
    return {"event": "ticket.called", "id": "T-A42", "to": PERSON, "data": {
        "ticket": "A42", "counter": "3"}} | fields  # fmt: skip


@contextmanager
def serving(tmp_path: Path, live_server, rate: str, flow: str = TICKET):
    """The app (its worker sending to a fake Twilio), a key, the fake and the settings."""
    with serving_app(tmp_path, live_server, rate, flow) as (url, key, fake, settings, _):
        yield url, key, fake, settings


@contextmanager
def serving_app(
    tmp_path: Path, live_server, rate: str, flow: str = TICKET, *, store=None, budget=None,
    workers: bool = True, **options: str,
):  # fmt: skip
    """As `serving`, and the app too; with `options` as settings, `store` as its session
    store, `budget` as its BodyBudget when given, and no starter nor sender unless
    `workers`."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "ticket.yaml").write_text(flow, encoding="utf-8")
    fake = FakeTwilio()
    with live_server(fake.app) as api:
        settings = settings_for(tmp_path, TWILIO_API_BASE=api.url, PALABRE_API_RATE=rate, **options)
        settings.secrets[SECRET] = "events-api-test-secret-" + "2" * 32
        manager = make_plugin_manager([builtins, palabre_twilio], entry_points=False)
        app = create_app(
            [flows], settings, plugins=manager, store=store, body_budget=budget, workers=workers
        )
        with live_server(app) as server:
            key = _key(settings, "smartqueue")
            yield server.url, key, fake, settings, app


@pytest.fixture
def served(tmp_path: Path, live_server):
    with serving(tmp_path, live_server, "5/minute") as found:
        yield found


def _key(settings, name: str) -> str:

    async def make() -> str:
        database = Database(f"sqlite+aiosqlite:///{settings.data_dir / 'palabre.db'}")
        try:
            return await ApiKeys(database, key_hasher(settings.secret(SECRET))).create(name)
        finally:
            await database.aclose()

    return asyncio.run(make())


def post(base: str, body: object, key: str | None, **headers: str) -> httpx.Response:
    auth = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{base}/api/v1/events", json=body, headers=auth | headers, timeout=20)


def status_of(base: str, key: str, event_id: str) -> httpx.Response:
    url = f"{base}/api/v1/events/{quote(event_id, safe='')}"
    return httpx.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=20)


def settled(base: str, key: str, event_id: str) -> dict:
    """What became of the event once its flows ran (polled: the starter runs them soon)."""
    deadline = time.monotonic() + 20
    while True:
        found = status_of(base, key, event_id)
        assert found.status_code == 200, found.text
        if found.json()["status"] not in ("queued", "starting"):
            return found.json()
        assert time.monotonic() < deadline, f"still {found.json()['status']}"
        time.sleep(0.02)


def problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    document = response.json()
    assert document["status"] == status and document["title"] and document["detail"]
    return document


def sent_to(fake: FakeTwilio, count: int) -> list[dict]:
    """The SMS the fake got, once `count` came (polled: the worker sends when it can)."""
    deadline = time.monotonic() + 20
    while len(fake.requests) < count:
        assert time.monotonic() < deadline, f"{len(fake.requests)} of {count} sent"
        time.sleep(0.02)
    return [request["form"] for request in fake.requests]


def test_an_event_becomes_the_flows_message_once_per_id(served):
    base, key, fake, _ = served
    first = post(base, event(), key)
    assert first.status_code == 202, first.text
    answer = first.json()
    assert answer == {"id": "T-A42", "event": "ticket.called", "status_url": "/api/v1/events/T-A42"}
    (sms,) = sent_to(fake, 1)
    assert sms["To"] == PERSON and sms["From"] == SMS_FROM
    assert sms["Body"].startswith("Ticket A42 : c'est votre tour au guichet 3.")
    became = settled(base, key, "T-A42")
    assert became["status"] == "started" and len(became["messages"]) == 1, became
    again = post(base, event(), key)
    assert (again.status_code, again.json()) == (202, answer), "the same answer, nothing new"
    reused = problem(post(base, event(data={"ticket": "B7"}), key), 422)
    assert reused["type"].endswith("/id-reused")
    assert settled(base, key, "T-A42") == became
    assert len(fake.requests) == 1, "a duplicate id sends nothing"


def test_prefer_wait_answers_with_the_messages_ids(served):
    """`Prefer: wait=N`: the answer waits for the flows to run (the app's own starter
    wakes it) and carries the event's status and its messages' ids, as `GET` tells them;
    a copy gets the same ids and sends nothing new."""
    base, key, fake, _ = served
    first = post(base, event(), key, Prefer="wait=10")  # the most: a loaded machine is slow
    assert first.status_code == 202, first.text
    assert first.headers["preference-applied"] == "wait=10"
    answer = first.json()
    assert answer["status_url"] == "/api/v1/events/T-A42"
    assert answer["status"] == "started" and len(answer["messages"]) == 1, answer
    post_doc = httpx.get(f"{base}/api/v1/openapi.json", timeout=20).json()
    documented = post_doc["components"]["schemas"]["Accepted"]["properties"]
    assert set(answer) <= set(documented), "the answer is the one documented"
    post_doc = post_doc["paths"]["/api/v1/events"]["post"]
    assert "Preference-Applied" in post_doc["responses"]["202"]["headers"]
    assert [parameter["name"] for parameter in post_doc["parameters"]] == ["Prefer"]
    ids = [message["id"] for message in answer["messages"]]
    assert ids == [message["id"] for message in status_of(base, key, "T-A42").json()["messages"]]
    again = post(base, event(), key, Prefer="respond-async, wait=10")
    assert [message["id"] for message in again.json()["messages"]] == ids, "the same ids"
    (sms,) = sent_to(fake, 1)
    assert sms["Body"].startswith("Ticket A42")
    plain = post(base, event(), key, Prefer="wait=soon")
    assert "preference-applied" not in plain.headers and "messages" not in plain.json()
    assert len(fake.requests) == 1, "a copy sends nothing"


def test_prefer_wait_ends_with_the_wait_when_no_starter_runs(tmp_path, live_server):
    """With no starter (`palabre serve --no-worker` and no worker yet), the wait runs out,
    and the answer says the event is still queued, with no messages."""
    with serving_app(tmp_path, live_server, "5/minute", workers=False) as found:
        base, key, fake, _, _ = found
        answer = post(base, event(), key, Prefer="wait=1")
        assert answer.status_code == 202 and answer.headers["preference-applied"] == "wait=1"
        assert (answer.json()["status"], answer.json()["messages"]) == ("queued", [])
        assert fake.requests == []


def test_an_events_status_is_its_keys_alone(served):
    base, key, fake, settings = served
    assert post(base, event(id="T/1 ?é"), key).status_code == 202
    (message,) = settled(base, key, "T/1 ?é")["messages"]
    sent_to(fake, 1)
    deadline = time.monotonic() + 20
    while (found := settled(base, key, "T/1 ?é")["messages"][0])["status"] != "sent":
        assert time.monotonic() < deadline, found
        time.sleep(0.02)
    assert found["id"] == message["id"], "each message's status, as the outbox has it"
    other = _key(settings, "fleet")
    assert problem(status_of(base, other, "T/1 ?é"), 404)["type"].endswith("/not-found")
    assert problem(status_of(base, key, "T-never"), 404)
    assert problem(status_of(base, "plb_" + "x" * 43, "T/1 ?é"), 401)


def test_the_person_answers_the_notification_and_the_flow_goes_on(served):
    base, key, fake, settings = served
    assert post(base, event(), key).status_code == 202
    sent_to(fake, 1)
    params = {"MessageSid": "SM" + "9" * 32, "AccountSid": settings.option("TWILIO_ACCOUNT_SID"),
              "From": PERSON, "To": SMS_FROM, "Body": "1", "NumMedia": "0"}  # fmt: skip
    url = f"{base}/twilio"
    headers = {"X-Twilio-Signature": sign(url, params)}
    reply = httpx.post(url, data=params, headers=headers, timeout=20)
    assert reply.status_code == 200 and "le guichet 3 vous attend" in reply.text


def test_keys_are_checked_and_revoked_keys_refused(served):
    base, key, fake, settings = served
    missing = problem(post(base, event(), None), 401)
    assert missing["type"].endswith("/unauthorized")
    assert problem(post(base, event(), "plb_" + "x" * 43), 401)

    async def revoke() -> None:
        database = Database(f"sqlite+aiosqlite:///{settings.data_dir / 'palabre.db'}")
        try:
            await ApiKeys(database, key_hasher(settings.secret(SECRET))).revoke("smartqueue")
        finally:
            await database.aclose()

    asyncio.run(revoke())
    assert problem(post(base, event(), key), 401)["detail"] == "this key is unknown or revoked"
    assert fake.requests == []


def test_an_event_its_flow_cannot_render_fails_and_sends_nothing(served):
    base, key, fake, _ = served
    assert post(base, event(id="T-1", data={"ticket": "A42"}), key).status_code == 202
    assert post(base, event(id="T-2"), key).status_code == 202
    failed = settled(base, key, "T-1")
    assert failed["status"] == "failed" and failed["messages"] == [], failed
    assert "'ticket_called' failed on this event's data" in failed["error"]
    (sms,) = sent_to(fake, 1)
    assert sms["Body"].startswith("Ticket A42"), "only the event that could be told was sent"
    assert settled(base, key, "T-2")["status"] == "started"


def test_a_persons_events_start_in_the_order_they_came(served):
    base, key, fake, _ = served
    for n in range(4):
        data = {"ticket": f"A{n}", "counter": "3"}
        assert post(base, event(id=f"T-{n}", data=data), key).status_code == 202
    bodies = [sms["Body"] for sms in sent_to(fake, 4)]
    assert [body.split(" ")[1] for body in bodies] == ["A0", "A1", "A2", "A3"], bodies


def test_each_wrong_field_is_named_and_no_number_repeated(served):
    base, key, _, _ = served
    hidden = problem(post(base, event(**{"+243812345678": "x"}), key), 422)
    assert "243812345678" not in str(hidden), "an odd field name is not repeated"
    body = event(to="0812", ttl=0, too="+243", channel="fax")
    body.pop("id")
    document = problem(post(base, body, key), 422)
    pointers = {error["pointer"] for error in document["errors"]}
    assert pointers == {"#/to", "#/ttl", "#/too", "#/channel", "#/id"}, document
    assert "0812" not in str(document)
    unknown = problem(post(base, event(event="ticket.lost"), key), 422)
    assert unknown["errors"] == [
        {"pointer": "#/event", "detail": "no flow is triggered by this event"}
    ]


def test_bodies_are_refused_by_type_size_and_form(served):
    base, key, _, _ = served
    auth = {"Authorization": f"Bearer {key}"}
    url = f"{base}/api/v1/events"
    as_form = httpx.post(url, data={"event": "x"}, headers=auth, timeout=20)
    assert problem(as_form, 415)
    json_type = auth | {"Content-Type": "application/json"}
    broken = httpx.post(url, content=b'{"event": ', headers=json_type, timeout=20)
    assert problem(broken, 400)
    huge = httpx.post(url, content=b" " * (65 * 1024), headers=json_type, timeout=20)
    assert problem(huge, 413)


def test_a_key_sending_too_fast_is_told_when_to_come_back(served):
    base, key, _, _ = served
    answers = [post(base, event(id=f"T-{n}"), key) for n in range(6)]
    assert [a.status_code for a in answers] == [202] * 5 + [429]
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert problem(answers[-1], 429)["type"].endswith("/rate-limited")


def test_the_openapi_document_matches_the_routes(served):
    base, key, _, _ = served
    document = httpx.get(f"{base}/api/v1/openapi.json", timeout=20).json()
    assert document["openapi"].startswith("3.1")
    for path, methods in document["paths"].items():
        for method in methods:
            answer = httpx.request(method.upper(), base + path, timeout=20)
            assert answer.status_code == 401 == int(problem(answer, 401)["status"]), path
    accepted = post(base, EXAMPLE, key)
    assert accepted.status_code == 202, "the documented example is accepted"
    documented = set(document["paths"]["/api/v1/events"]["post"]["responses"])
    assert {"202", "400", "401", "408", "413", "415", "422", "429", "503"} <= documented
    assert media_of(base, 202) == accepted.headers["content-type"]
    found = settled(base, key, EXAMPLE["id"])
    statuses = document["components"]["schemas"]["EventStatus"]["properties"]["status"]["enum"]
    assert set(found) <= set(document["components"]["schemas"]["EventStatus"]["properties"])
    assert found["status"] in statuses
    asked = document["paths"]["/api/v1/events/{id}"]["get"]["responses"]
    assert {"200", "401", "404", "429", "503"} <= set(asked)
    assert media_of(base, 200, "/api/v1/events/{id}", "get") == "application/json"
    assert media_of(base, 404, "/api/v1/events/{id}", "get") == "application/problem+json"
    assert media_of(base, 401) == post(base, EXAMPLE, None).headers["content-type"]
    bad_key = post(base, EXAMPLE, "plb_" + "x" * 43)
    assert media_of(base, 401) == bad_key.headers["content-type"]
    for status in (400, 413, 415, 422, 429):
        assert media_of(base, status) == "application/problem+json", f"{status} is a problem"


def test_hostile_bodies_get_a_4xx_never_a_5xx(tmp_path, live_server):
    """A bounded random loop of bodies, well-formed or not, each answered 202 or 4xx."""
    rnd = random.Random(11)
    values = [None, True, 0, -1, 10**30, 1.5, "", "x" * 300, "+243812345678", "0812",
              "ticket.called", "\u0000", "توقف", [], {}, {"a": {"b": [1]}}, "whatsapp:+1"]  # fmt: skip
    names = ["event", "id", "to", "channel", "lang", "data", "ttl", "too", ""]
    with (
        serving(tmp_path, live_server, "10000/minute") as (base, key, _, _),
        httpx.Client(timeout=20) as client,
    ):
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        for n in range(300):
            fields = rnd.randint(0, 8)
            body: object = {rnd.choice(names): rnd.choice(values) for _ in range(fields)}
            if n % 10 == 0:
                body = rnd.choice(values)
            content = json.dumps(body).encode()
            if n % 7 == 0:
                content = content[: rnd.randint(0, len(content))]
            answer = client.post(f"{base}/api/v1/events", content=content, headers=headers)
            assert answer.status_code == 202 or 400 <= answer.status_code < 500, (
                f"{answer.status_code} for {content!r}: {answer.text}"
            )


def test_the_commands_make_list_and_revoke_keys_and_notify_once_per_id(tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "ticket.yaml").write_text(TICKET, encoding="utf-8")
    env = {
        **os.environ,
        "PALABRE_SECRET": "events-cli-test-secret-" + "3" * 32,
        "PALABRE_DATA_DIR": str(tmp_path / "data"),
        "PALABRE_DEFAULT_REGION": "CD",
        "PALABRE_DISABLE_PLUGINS": "meta_cloud",
    }

    def palabre(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "palabre.cli", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    made = palabre("apikey", "create", "fleet")
    assert made.returncode == 0 and made.stdout.startswith("plb_"), made.stderr
    assert "shown once" in made.stderr
    assert palabre("apikey", "create", "fleet").returncode == 2, "a name is used once"
    assert palabre("apikey", "create", "cli").returncode == 2, "the name notify sends under"
    assert palabre("apikey", "create", "a:b").returncode == 2, "names are plain words"
    assert palabre("apikey", "list").stdout == "fleet\tin force\n"
    assert palabre("apikey", "revoke", "fleet").returncode == 0
    assert palabre("apikey", "list").stdout == "fleet\trevoked\n"

    notify = ["notify", "ticket.called", "--to", "0812345678", "--id", "T-9", "--flows"]
    notify += [str(flows), "--data", "ticket=A9", "--data", "counter=2"]
    first, again = palabre(*notify), palabre(*notify)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == json.loads(again.stdout), "the same id: the same answer"
    told = json.loads(first.stdout)
    assert (told["id"], told["status"], len(told["messages"])) == ("T-9", "started", 1), told
    assert "waits" not in first.stderr + again.stderr, "started at once, then found started"
    wrong = palabre("notify", "ticket.lost", "--to", "0812345678", "--flows", str(flows))
    assert wrong.returncode == 1 and '"pointer": "#/event"' in wrong.stderr


def readme_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Send notifications from your system")
    return text[start : text.index("\n## ", start + 1)]


def test_the_readme_section_runs_as_written(tmp_path, live_server):
    """The README's flow, served; its curl lines run by curl (their JSON parsed)."""
    section = readme_section()
    flow = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    lines = [part.split("```", 1)[0] for part in section.split("```sh\ncurl")[1:]]
    post_line, get_line, wait_line = lines
    with serving(tmp_path, live_server, "5/minute", flow=flow) as (base, key, fake, _):

        def curl(command: str) -> dict:
            shell = "curl" + command.replace("http://127.0.0.1:8000", base)
            done = subprocess.run(
                ["bash", "-c", shell], env={**os.environ, "PALABRE_KEY": key},
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            return json.loads(done.stdout)

        answer = curl(post_line)
        assert answer["status_url"] == "/api/v1/events/T-A42-called"
        (sms,) = sent_to(fake, 1)
        settled(base, key, answer["id"])
        became = curl(get_line)
        waited = curl(wait_line)
        told = status_of(base, key, waited["id"]).json()
    assert sms["Body"].startswith("Ticket A42 : c'est votre tour au guichet 3.")
    assert became["status"] == "started" and len(became["messages"]) == 1, became
    assert waited["status"] == "started" and len(waited["messages"]) == 1, waited
    assert waited["messages"][0]["id"] == told["messages"][0]["id"], "the ids the GET tells"


def test_a_broadcast_purpose_event_reaches_only_those_who_agreed(tmp_path, live_server):
    flow = TICKET.replace("{event: ticket.called}", "{event: ticket.called, purpose: broadcast}")
    with serving(tmp_path, live_server, "5/minute", flow=flow) as (base, key, fake, settings):
        database = f"sqlite+aiosqlite:///{settings.data_dir / 'palabre.db'}"
        first = post(base, event(id="promo-1"), key)
        assert first.status_code == 202  # accepted; the outbox decides at send time
        (skipped,) = settled(base, key, "promo-1")["messages"]
        assert _settled(database, skipped["id"]) == "skipped"
        _agree(database, settings, f"tel:{PERSON}")
        assert post(base, event(id="promo-2"), key).status_code == 202
        (sms,) = sent_to(fake, 1)
        (sent,) = settled(base, key, "promo-2")["messages"]
    assert _settled(database, sent["id"]) == "sent"
    assert sms["To"] == PERSON, "only after the person agreed to announcements"


def _settled(url: str, uid: str) -> str:
    """The row's status once the worker is done with it (polled: it sends when it can)."""

    from palabre.outbox.store import Outbox

    async def read() -> str:
        database = Database(url)
        try:
            row = await Outbox(database).get(uid)
            return row.status if row else "missing"
        finally:
            await database.aclose()

    deadline = time.monotonic() + 20
    while (status := asyncio.run(read())) in ("held", "queued", "sending", "missing"):
        assert time.monotonic() < deadline, f"still {status}"
        time.sleep(0.02)
    return status


def _agree(url: str, settings, address: str) -> None:

    from palabre.contacts import contact_hasher, contact_key
    from palabre.stores.consent import ConsentLedger

    async def write() -> None:
        database = Database(url)
        try:
            key = contact_key(contact_hasher(settings.secret(SECRET)), address)
            await ConsentLedger(database).record(key, "broadcast", True, "import")
        finally:
            await database.aclose()

    asyncio.run(write())


def test_the_retention_forgets_old_answers_and_the_id_is_new_again(served):

    from palabre.outbox.retention import Retention, purge
    from palabre.outbox.store import Outbox

    base, key, fake, settings = served
    assert post(base, event(), key).status_code == 202
    sent_to(fake, 1)
    url = f"sqlite+aiosqlite:///{settings.data_dir / 'palabre.db'}"
    first = settled(base, key, "T-A42")
    assert _settled(url, first["messages"][0]["id"]) == "sent", "settled: the retention may take it"

    async def purge_all() -> None:
        database = Database(f"sqlite+aiosqlite:///{settings.data_dir / 'palabre.db'}")
        try:
            await purge(Outbox(database), Retention(bodies=0.0, rows=0.0))  # "90 days" later
        finally:
            await database.aclose()

    asyncio.run(purge_all())
    assert problem(status_of(base, key, "T-A42"), 404), "forgotten"
    assert post(base, event(), key).status_code == 202
    assert len(sent_to(fake, 2)) == 2, "sent anew"
    again = settled(base, key, "T-A42")
    assert len(again["messages"]) == 1 and again["messages"] != first["messages"]


def test_the_openapi_document_declares_the_headers_of_its_refusals(served):
    base, _, _, _ = served
    responses = httpx.get(f"{base}/api/v1/openapi.json", timeout=20).json()["paths"][
        "/api/v1/events"]["post"]["responses"]  # fmt: skip
    assert "WWW-Authenticate" in responses["401"]["headers"]
    assert "Retry-After" in responses["429"]["headers"] and "503" in responses
    assert "Retry-After" in responses["503"]["headers"]


def media_of(
    base: str, status: int, path: str = "/api/v1/events", method: str = "post"
) -> str | None:
    """The one media type the OpenAPI document gives for `status` (None: no body)."""
    document = httpx.get(f"{base}/api/v1/openapi.json", timeout=20).json()
    responses = document["paths"][path][method]["responses"]
    content = responses[str(status)].get("content", {})
    assert len(content) <= 1, f"{status} is documented with one media type"
    return next(iter(content), None)


# -- failed authentications, per client -------------------------------------------------------

# Told by X-Forwarded-For, which uvicorn takes from a loopback client (FORWARDED_ALLOW_IPS).
GUESSER, NEIGHBOUR = "203.0.113.7", "203.0.113.8"


class Lookups:
    """An ApiKeys whose `owner` (the key looked up in the database) is counted."""

    def __init__(self, keys: ApiKeys) -> None:
        self.count, self.looked_up = 0, keys.owner
        keys.owner = self.owner  # type: ignore[method-assign]

    async def owner(self, key: str) -> str | None:
        self.count += 1
        return await self.looked_up(key)


def from_client(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def test_a_client_that_fails_to_authenticate_is_refused_before_any_key_is_looked_up(
    tmp_path, live_server
):
    rate = {"PALABRE_API_FAILED_AUTH_RATE": "3/minute"}
    with serving_app(tmp_path, live_server, "100/minute", **rate) as (base, key, _, _, app):
        assert post(base, event(id="T-1"), key, **from_client(GUESSER)).status_code == 202
        lookups = Lookups(app.state.events_api.keys)
        for wrong in (None, "nope", "plb_" + "x" * 43):
            assert problem(post(base, event(), wrong, **from_client(GUESSER)), 401)
        assert lookups.count == 2, "a missing key is not looked up"
        locked = post(base, event(id="T-2"), key, **from_client(GUESSER))
        guessed = post(base, event(id="T-3"), "plb_" + "y" * 43, **from_client(GUESSER))
        neighbour = post(base, event(id="T-4"), key, **from_client(NEIGHBOUR))
        documented = media_of(base, 429)
    for refused in (locked, guessed):
        assert problem(refused, 429)["type"].endswith("/auth-rate-limited"), refused.text
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.headers["content-type"] == documented
        assert GUESSER not in refused.text and key not in refused.text
    assert lookups.count == 3, "past the limit, no key is looked up; the neighbour's is"
    assert neighbour.status_code == 202, "another client's good key still works"


# -- the server's own refusals -------------------------------------------------------------------


class GoesDown(SQLiteSessionStore):
    """A real SQLite session store that is unavailable while `down` is set."""

    down = False
    refused = 0

    def locked(self, contact, **options):
        if self.down:
            self.refused += 1
            raise StoreUnavailable("the session store is down")
        return super().locked(contact, **options)


def test_a_session_store_outage_holds_the_event_until_the_store_is_back(tmp_path, live_server):
    store = GoesDown(tmp_path / "sessions.db")
    with serving_app(tmp_path, live_server, "100/minute", store=store) as (base, key, fake, *_):
        store.down = True
        taken = post(base, event(), key)
        deadline = time.monotonic() + 20
        while not store.refused:  # the starter tried, and the store refused
            assert time.monotonic() < deadline, "the starter never tried"
            time.sleep(0.02)
        waiting = status_of(base, key, "T-A42").json()["status"]
        nothing = list(fake.requests)
        store.down = False
        (sms,) = sent_to(fake, 1)
        became = settled(base, key, "T-A42")
    assert taken.status_code == 202, "taken: the session store is the starter's concern"
    assert waiting in ("queued", "starting") and nothing == []
    assert became["status"] == "started" and sms["To"] == PERSON, "started once it was back"


def test_a_database_outage_is_a_503_problem_and_the_same_id_is_taken_once_it_is_back(
    tmp_path, live_server
):
    with serving_app(tmp_path, live_server, "100/minute") as (base, key, fake, _, app):
        queue = app.state.host.stores.events
        take = queue.take

        async def down(event: object) -> None:
            raise StoreUnavailable("the database is down")

        queue.take = down
        refused = post(base, event(), key)
        documented = media_of(base, 503)
        queue.take = take
        again = post(base, event(), key)
        (sms,) = sent_to(fake, 1)
    assert problem(refused, 503)["type"].endswith("/unavailable")
    assert refused.headers["Retry-After"] == "5" and documented == "application/problem+json"
    assert again.status_code == 202 and sms["To"] == PERSON, "sent again, taken once"


def test_a_database_outage_during_a_wait_still_answers_the_event_taken(tmp_path, live_server):
    """The event is stored before the wait: a database that fails while the answer waits
    for its flows leaves a 202 without its status (read later), not a 503."""
    with serving_app(tmp_path, live_server, "100/minute") as (base, key, fake, _, app):
        queue = app.state.host.stores.events

        async def down(*args: object) -> None:
            raise StoreUnavailable("the database is down")

        queue.settled = down
        answer = post(base, event(), key, Prefer="wait=10")
        (sms,) = sent_to(fake, 1)
        became = settled(base, key, "T-A42")
    assert answer.status_code == 202, answer.text
    assert answer.json() == {
        "id": "T-A42",
        "event": "ticket.called",
        "status_url": "/api/v1/events/T-A42",
    }
    assert became["status"] == "started" and sms["To"] == PERSON, "taken, and started"


def test_a_body_without_room_or_too_slow_is_a_problem_document(tmp_path, live_server):
    budget = BodyBudget(max_held=200, deadline=0.5)
    with serving_app(tmp_path, live_server, "100/minute", budget=budget) as (base, key, *_):
        busy = post(base, event(data={"ticket": "A" * 300, "counter": "3"}), key)
        bearer = f"Authorization: Bearer {key}\r\n"
        slow = half_sent(base, "/api/v1/events", declared=100, sent=10, headers=bearer)
        status, head, document = answer_of(slow)
        documented = media_of(base, 408)
    assert problem(busy, 503)["type"].endswith("/busy") and busy.headers["Retry-After"]
    assert status == 408 and "content-type: application/problem+json" in head, head
    assert document["type"].endswith("/too-slow") and documented == "application/problem+json"


def answer_of(sock: socket.socket) -> tuple[int, str, dict]:
    """The status, the lower-cased head and the JSON body answered on `sock` (closed)."""
    with sock, sock.makefile("rb") as answer:
        lines = []
        while (line := answer.readline().decode("latin-1").strip()) != "":
            lines.append(line)
        sizes = [h.split(":")[1] for h in lines if h.lower().startswith("content-length:")]
        body = json.loads(answer.read(int(sizes[0])))
    return int(lines[0].split(" ")[1]), "\n".join(lines).lower(), body
