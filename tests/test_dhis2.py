"""The DHIS-2 plugin against a fake DHIS-2 served on loopback (no mocks of httpx or of us).

`FakeDhis2` keeps tracked entities in memory and speaks the documented shapes: the
2.40 query names (`orgUnit`, `ouMode`) and `instances` pages, or the 2.41+ names
(`orgUnits`, `orgUnitMode`; the old ones removed in 2.42) and `trackedEntities` with a
`pager`; the tracker importer's report (409 ERROR with E1064 on a taken code, E1002 on
a reused UID); `/api/potentialDuplicates`. It can be switched down (503), made slow, or
made to fail the next requests, and it records every request it receives.
"""

from __future__ import annotations

import asyncio
import base64
import textwrap
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from tests.conftest import free_port

from palabre import cli
from palabre.actions import ActionContext
from palabre.bootstrap import Toolkit, build_engine, load_flows
from palabre.config import Settings
from palabre.errors import ActionError
from palabre.flow.loader import parse_flow
from palabre.flow.source import parse_source
from palabre.plugins import collect_actions, make_plugin_manager
from palabre.runtime.messages import Inbound
from palabre.stores.bundle import Stores, open_stores
from palabre.transports import Host
from palabre_dhis2 import find, flag_duplicate, register
from palabre_dhis2.client import Dhis2Client
from palabre_dhis2.config import Dhis2Config
from palabre_dhis2.params import parse_version
from palabre_dhis2.program import ProgramSettings
from palabre_dhis2.queue import RegistrationQueue
from palabre_dhis2.registration import Registration
from palabre_dhis2.tracker import entity_ids, read_import_report, submit
from palabre_dhis2.uid import generate_uid, is_uid
from palabre_dhis2.worker import drain, retry_registrations

TOKEN = "d2pat_test-token-0123456789"
USER, PASSWORD = "admin", "district"
PROGRAM = {
    "program": "IpHINAT79UW",
    "attribute": "lZGmxYbs97q",
    "org_unit": "DiszpKrYNg8",
    "tracked_entity_type": "nEenWmSyUEp",
}
CODE = "MBEIBR7DA1"
PHONE = "+243810000001"
UNIQUE_ATTRIBUTES = {PROGRAM["attribute"]}


# -- the fake DHIS-2 ------------------------------------------------------------------


@dataclass
class Seen:
    """One request the fake received: the raw query string keeps the exact encoding."""

    method: str
    path: str
    query: str
    params: list[tuple[str, str]]
    authorization: str
    body: Any


@dataclass
class Entity:
    uid: str
    attributes: dict[str, str]
    programs: set[str] = field(default_factory=set)
    org_unit: str = ""
    type: str = ""


class FakeDhis2:
    """A small, in-memory DHIS-2 of version `version` (2.40, 2.41 or 2.42)."""

    def __init__(self, version: str = "2.41") -> None:
        self.version = version
        self.url = ""
        self.entities: dict[str, Entity] = {}
        self.enrollments: set[str] = set()
        self.duplicates: set[tuple[str, str]] = set()
        self.requests: list[Seen] = []
        self.down = False
        self.fail_next: list[int] = []
        self.slow_next = 0
        self.slow_seconds = 0.0
        self._lock = threading.Lock()

    @property
    def minor(self) -> int:
        return parse_version(self.version)[1]

    def seed(self, value: str, uid: str | None = None) -> str:
        """Store a tracked entity carrying `value`, bypassing the importer's checks."""
        uid = uid or generate_uid()
        self.entities[uid] = Entity(
            uid, {PROGRAM["attribute"]: value}, {PROGRAM["program"]}, PROGRAM["org_unit"]
        )
        return uid

    def seen(self, method: str, path: str) -> list[Seen]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/api/{rest:path}", self.handle, methods=["GET", "POST"])])

    async def handle(self, request: Request) -> Response:
        body = await request.json() if request.method == "POST" else None
        with self._lock:
            self.requests.append(
                Seen(
                    request.method,
                    request.url.path,
                    request.url.query,
                    list(request.query_params.multi_items()),
                    request.headers.get("authorization", ""),
                    body,
                )
            )
            slow, self.slow_next = self.slow_next > 0, max(0, self.slow_next - 1)
            failure = self.fail_next.pop(0) if self.fail_next else None
        if slow:
            await asyncio.sleep(self.slow_seconds)
        if self.down:
            return PlainTextResponse("503 Service Unavailable", status_code=503)
        if failure:
            return _web_message(failure, "injected failure")
        if request.headers.get("authorization") not in _accepted_credentials():
            return _web_message(401, "Unauthorized")
        return self.route(request.method, request.url.path, request, body)

    def route(self, method: str, path: str, request: Request, body: Any) -> Response:
        params = dict(request.query_params.multi_items())
        if (method, path) == ("GET", "/api/tracker/trackedEntities"):
            return self.tracked_entities(params)
        if (method, path) == ("POST", "/api/tracker"):
            return self.tracker_import(body)
        if (method, path) == ("POST", "/api/potentialDuplicates"):
            return self.potential_duplicate(body)
        if (method, path) == ("GET", "/api/system/info"):
            return JSONResponse({"version": f"{self.version}.1", "revision": "a1b2c3d"})
        if (method, path) == ("GET", "/api/me"):
            return JSONResponse({"id": "xE7jOejl9FI", "username": USER})
        return _web_message(404, "not found")

    def tracked_entities(self, params: dict[str, str]) -> Response:
        new_names = {"orgUnits", "orgUnitMode"} & set(params)
        old_names = {"orgUnit", "ouMode"} & set(params)
        if self.minor >= 42 and old_names:
            return _web_message(400, f"unknown parameter(s) {sorted(old_names)}: removed in 2.42")
        if self.minor <= 40 and not params.get("orgUnit"):
            return _web_message(400, "At least one organisation unit must be specified")
        if self.minor >= 41 and not new_names and not old_names:
            return _web_message(400, "At least one organisation unit must be specified")
        attribute, _, value = params["filter"].split(":", 2)
        if self.minor >= 41:
            value = _unescape(value)
        ids = [
            e.uid
            for e in self.entities.values()
            if e.attributes.get(attribute) == value and params["program"] in e.programs
        ]
        items = [{"trackedEntity": uid} for uid in ids]
        if self.minor <= 40:
            return JSONResponse({"page": 1, "pageSize": 50, "instances": items})
        return JSONResponse({"pager": {"page": 1, "pageSize": 50}, "trackedEntities": items})

    def tracker_import(self, body: dict[str, Any]) -> Response:
        errors = []
        for te in body.get("trackedEntities", []):
            errors += self._errors(te)
        if errors:
            return JSONResponse(_report("ERROR", errors, created=0), status_code=409)
        for te in body["trackedEntities"]:
            values = {a["attribute"]: a["value"] for a in te.get("attributes", [])}
            programs = {e["program"] for e in te.get("enrollments", [])}
            self.enrollments |= {e["enrollment"] for e in te.get("enrollments", [])}
            self.entities[te["trackedEntity"]] = Entity(
                te["trackedEntity"], values, programs, te["orgUnit"], te["trackedEntityType"]
            )
        return JSONResponse(_report("OK", [], created=len(body["trackedEntities"])))

    def _errors(self, te: dict[str, Any]) -> list[dict[str, str]]:
        uid = te.get("trackedEntity", "")
        if not is_uid(uid):
            return [
                _error(
                    "E1048",
                    f"Object: `trackedEntity`, uid: `{uid}`, has an invalid uid format.",
                    uid,
                )
            ]
        errors = []
        if uid in self.entities:
            errors.append(_error("E1002", f"TrackedEntity: `{uid}`, already exists.", uid))
        for e in te.get("enrollments", []):
            if e["enrollment"] in self.enrollments:
                errors.append(
                    _error("E1080", f"Enrollment: `{e['enrollment']}`, already exists.", uid)
                )
        for a in te.get("attributes", []):
            taken = any(
                other.uid != uid and other.attributes.get(a["attribute"]) == a["value"]
                for other in self.entities.values()
            )
            if a["attribute"] in UNIQUE_ATTRIBUTES and taken:
                message = (
                    f"Non-unique attribute value `{a['value']}` for attribute `{a['attribute']}`"
                )
                errors.append(_error("E1064", message, uid))
        return errors

    def potential_duplicate(self, body: dict[str, Any]) -> Response:
        pair = (body.get("original"), body.get("duplicate"))
        if not all(is_uid(uid) for uid in pair):
            return _web_message(400, "Missing required input property 'original'")
        if not all(uid in self.entities for uid in pair):
            return _web_message(404, "No tracked entity found")
        if pair in self.duplicates:
            return _web_message(409, "is already marked as a potential duplicate")
        self.duplicates.add((str(pair[0]), str(pair[1])))
        return JSONResponse(
            {"id": generate_uid(), "original": pair[0], "duplicate": pair[1], "status": "OPEN"}
        )


def _accepted_credentials() -> set[str]:
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return {f"ApiToken {TOKEN}", f"Basic {basic}"}


def _unescape(value: str) -> str:
    out, escaped = "", False
    for char in value:
        if char == "/" and not escaped:
            escaped = True
            continue
        out, escaped = out + char, False
    return out


def _error(code: str, message: str, uid: str) -> dict[str, str]:
    return {"message": message, "errorCode": code, "trackerType": "TRACKED_ENTITY", "uid": uid}


def _report(status: str, errors: list[dict[str, str]], *, created: int) -> dict[str, Any]:
    stats = {
        "created": created,
        "updated": 0,
        "deleted": 0,
        "ignored": len(errors),
        "total": created + len(errors),
    }
    return {
        "status": status,
        "validationReport": {"errorReports": errors, "warningReports": []},
        "stats": stats,
        "bundleReport": {"typeReportMap": {}},
    }


def _web_message(status: int, message: str) -> JSONResponse:
    body = {"httpStatusCode": status, "status": "ERROR", "message": message}
    return JSONResponse(body, status_code=status)


# -- fixtures and helpers -------------------------------------------------------------


@pytest.fixture
def fake(live_server):
    dhis2 = FakeDhis2()
    with live_server(dhis2.app()) as server:
        dhis2.url = server.url
        yield dhis2


def settings_for(url: str, tmp_path: Path, version: str = "2.41", **options: str) -> Settings:
    values = {
        "DHIS2_URL": url,
        "DHIS2_VERSION": version,
        "DHIS2_TIMEOUT": "0.3",
        "DHIS2_RETRY_DELAYS": "0.01,0.01,0.01",
        **options,
    }
    secrets = {"PALABRE_SECRET": "dhis2-test-secret-" + "0" * 32}
    if "DHIS2_USERNAME" not in options:
        secrets["DHIS2_TOKEN"] = TOKEN
    else:
        secrets["DHIS2_PASSWORD"] = PASSWORD
    return Settings(data_dir=tmp_path / "data", options=values, secrets=secrets)


def context_for(
    settings: Settings,
    http: httpx.AsyncClient | None = None,
    stores: Stores | None = None,
    **section: str,
):
    return ActionContext(
        flow_id="uic",
        step_id="register",
        locale="en",
        contact_key="0123456789abcdef",
        settings={"dhis2": {**PROGRAM, **section}},
        stores=stores,
        settings_env=settings,
        http=http,
    )


@pytest.fixture
async def stores(tmp_path):
    """The durable stores in the data dir of `settings_for(..., tmp_path)`."""
    opened = open_stores(Settings(data_dir=tmp_path / "data"))
    yield opened
    await opened.aclose()


def queue_in(stores: Stores) -> RegistrationQueue:
    return RegistrationQueue(stores.tasks)


def stored_bytes(data_dir: Path) -> bytes:
    """Everything the embedded database holds on disk, write-ahead log included."""
    return b"".join(p.read_bytes() for p in data_dir.glob("palabre.db*"))


def client_for(fake: FakeDhis2, http: httpx.AsyncClient) -> Dhis2Client:
    config = Dhis2Config(url=fake.url, token=TOKEN, version=parse_version(fake.version))
    return Dhis2Client(config, http)


def program() -> ProgramSettings:
    return ProgramSettings(**PROGRAM)


# -- find -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_find_on_2_41_sends_org_units_and_reads_tracked_entities_with_a_pager(fake, tmp_path):
    uid = fake.seed("AB+C1")
    async with httpx.AsyncClient() as http:
        result = await find.find(
            {"value": "AB+C1"}, context_for(settings_for(fake.url, tmp_path), http)
        )
    assert result == {"found": True, "count": 1, "ids": [uid]}
    (request,) = fake.seen("GET", "/api/tracker/trackedEntities")
    assert "filter=lZGmxYbs97q%3AEQ%3AAB%2BC1" in request.query, "a + must travel as %2B"
    assert request.params == [
        ("filter", "lZGmxYbs97q:EQ:AB+C1"),
        ("program", "IpHINAT79UW"),
        ("fields", "trackedEntity"),
        ("orgUnits", "DiszpKrYNg8"),
        ("orgUnitMode", "DESCENDANTS"),
    ]
    assert request.authorization == f"ApiToken {TOKEN}"


@pytest.mark.anyio
async def test_find_on_2_40_sends_org_unit_and_ou_mode_and_reads_instances(fake, tmp_path):
    fake.version = "2.40"
    settings = settings_for(fake.url, tmp_path, "2.40", DHIS2_USERNAME=USER)
    result = await find.find({"value": CODE}, context_for(settings))
    assert result == {"found": False, "count": 0, "ids": []}
    (request,) = fake.seen("GET", "/api/tracker/trackedEntities")
    assert ("orgUnit", "DiszpKrYNg8") in request.params
    assert ("ouMode", "DESCENDANTS") in request.params
    assert not {"orgUnits", "orgUnitMode"} & {name for name, _ in request.params}
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert request.authorization == f"Basic {basic}"


@pytest.mark.anyio
async def test_a_2_40_setting_against_a_2_42_server_fails_clearly_without_retrying(fake, tmp_path):
    fake.version = "2.42"
    with pytest.raises(ActionError) as caught:
        await find.find({"value": CODE}, context_for(settings_for(fake.url, tmp_path, "2.40")))
    assert "HTTP 400" in str(caught.value)
    assert caught.value.user_message
    assert len(fake.requests) == 1, "a 4xx is never retried"


def test_both_page_shapes_and_both_report_shapes_are_read():
    assert entity_ids({"page": 1, "instances": [{"trackedEntity": "Kj6vYde4LHh"}]}) == [
        "Kj6vYde4LHh"
    ]
    assert entity_ids({"pager": {}, "trackedEntities": [{"trackedEntity": "Gjaiu3ea38E"}]}) == [
        "Gjaiu3ea38E"
    ]
    bare = {"status": "ERROR", "validationReport": {"errorReports": [{"errorCode": "E1064"}]}}
    wrapped = {"httpStatusCode": 409, "status": "ERROR", "response": bare}
    assert read_import_report(bare) == read_import_report(wrapped)
    assert read_import_report(wrapped).error_codes == ("E1064",)


def test_filter_values_are_escaped_from_2_41_only():
    from palabre_dhis2.params import escape_filter_value

    assert escape_filter_value("a:b,c/d", (2, 41)) == "a/:b/,c//d"
    assert escape_filter_value("a:b", (2, 40)) == "a:b"


# -- register -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_register_creates_one_enrolled_entity_with_a_client_uid(fake, tmp_path):
    result = await register.register({"value": CODE}, context_for(settings_for(fake.url, tmp_path)))
    (post,) = fake.seen("POST", "/api/tracker")
    assert post.params == [("async", "false"), ("importStrategy", "CREATE"), ("atomicMode", "ALL")]
    te = post.body["trackedEntities"][0]
    (enrollment,) = te.pop("enrollments")
    assert te == {
        "trackedEntity": result["id"],
        "trackedEntityType": "nEenWmSyUEp",
        "orgUnit": "DiszpKrYNg8",
        "attributes": [{"attribute": "lZGmxYbs97q", "value": CODE}],
    }
    assert is_uid(enrollment.pop("enrollment"))
    assert enrollment.pop("enrolledAt") == enrollment.pop("occurredAt")
    assert enrollment == {"program": "IpHINAT79UW", "orgUnit": "DiszpKrYNg8", "status": "ACTIVE"}
    assert result == {"status": "created", "id": te["trackedEntity"]}
    (entity,) = fake.entities.values()
    assert entity.attributes == {"lZGmxYbs97q": CODE} and entity.programs == {"IpHINAT79UW"}


@pytest.mark.anyio
async def test_registering_the_same_code_twice_says_exists_and_creates_nothing(fake, tmp_path):
    context = context_for(settings_for(fake.url, tmp_path))
    first = await register.register({"value": CODE}, context)
    again = await register.register({"value": CODE}, context)
    assert again == {"status": "exists", "id": first["id"]}
    assert len(fake.entities) == 1
    assert len(fake.seen("POST", "/api/tracker")) == 1


@pytest.mark.anyio
async def test_a_retried_turn_finds_the_entity_it_created_itself(fake, tmp_path):
    """The same turn (idempotency key) registering again after a crash: its own UIDs, so the
    entity it created counts as created; another turn sees the code as existing."""
    settings = settings_for(fake.url, tmp_path)
    turn = replace(context_for(settings), idempotency_key="m1:uic:register")
    first = await register.register({"value": CODE}, turn)
    retried = await register.register({"value": CODE}, turn)
    other = await register.register({"value": CODE}, replace(turn, idempotency_key="m2:uic:x"))
    assert first == retried == {"status": "created", "id": first["id"]}
    assert other == {"status": "exists", "id": first["id"]}
    assert len(fake.entities) == 1 and len(fake.seen("POST", "/api/tracker")) == 1
    assert Registration.new(CODE, program(), seed="m1:uic:register") == Registration.new(
        CODE, program(), seed="m1:uic:register"
    )
    assert is_uid(Registration.new(CODE, program(), seed="m1").tracked_entity)


@pytest.mark.anyio
async def test_an_import_rejected_as_non_unique_or_already_there_is_read(fake):
    async with httpx.AsyncClient() as http:
        client = client_for(fake, http)
        taken = Registration.new(CODE, program())
        fake.seed(CODE)
        assert await submit(client, taken) == "exists", "E1064: someone else has the code"
        mine = Registration.new("OTHERCODE1", program())
        assert await submit(client, mine) == "created"
        assert await submit(client, mine) == "created", "E1002: the retry finds its first attempt"
    assert len(fake.entities) == 2
    assert fake.requests[-1].method == "POST" and len(fake.seen("POST", "/api/tracker")) == 3


@pytest.mark.anyio
async def test_register_is_skipped_when_dhis2_is_not_configured(tmp_path):
    settings = Settings(data_dir=tmp_path)
    assert await register.register({"value": CODE}, context_for(settings)) == {"status": "skipped"}


@pytest.mark.anyio
async def test_client_errors_are_not_retried_and_reach_on_error(fake, tmp_path):
    fake.fail_next = [403]
    with pytest.raises(ActionError) as caught:
        await register.register({"value": CODE}, context_for(settings_for(fake.url, tmp_path)))
    assert "HTTP 403" in str(caught.value) and "credentials" in str(caught.value)
    assert caught.value.user_message == "The health registry could not record this request."
    assert len(fake.requests) == 1
    assert fake.entities == {}


@pytest.mark.anyio
async def test_a_wrong_token_is_refused_once(fake, tmp_path):
    settings = settings_for(fake.url, tmp_path)
    settings.secrets["DHIS2_TOKEN"] = "wrong"
    with pytest.raises(ActionError, match="HTTP 401"):
        await find.find({"value": CODE}, context_for(settings))
    assert len(fake.requests) == 1


@pytest.mark.anyio
async def test_server_errors_are_retried_with_backoff(fake, tmp_path):
    fake.fail_next = [503, 502]
    result = await register.register({"value": CODE}, context_for(settings_for(fake.url, tmp_path)))
    assert result["status"] == "created"
    assert len(fake.seen("GET", "/api/tracker/trackedEntities")) == 3
    assert len(fake.entities) == 1


@pytest.mark.anyio
async def test_timeouts_are_retried(fake, tmp_path):
    fake.slow_next, fake.slow_seconds = 1, 1.0
    settings = settings_for(fake.url, tmp_path, DHIS2_TIMEOUT="0.2")
    result = await find.find({"value": CODE}, context_for(settings))
    assert result["found"] is False
    assert len(fake.seen("GET", "/api/tracker/trackedEntities")) == 2


# -- DHIS-2 down: the queue and the worker ----------------------------------------------


@pytest.mark.anyio
async def test_when_dhis2_is_down_the_registration_is_queued_then_completed(fake, tmp_path, stores):
    settings = settings_for(fake.url, tmp_path)
    fake.down = True
    result = await register.register({"value": CODE}, context_for(settings, stores=stores))
    assert result == {"status": "queued"}
    assert len(fake.requests) == 4, "one try and three retries, then queued"
    queue = queue_in(stores)
    assert await queue.count() == 1
    stored = stored_bytes(settings.data_dir)
    assert CODE.encode() in stored and PHONE.encode() not in stored

    async with httpx.AsyncClient() as http:
        host = _host(settings, http, tmp_path, stores)
        job = asyncio.create_task(retry_registrations(host, interval=0.05, backoff=lambda n: 0.0))
        await asyncio.sleep(0.2)
        assert await queue.count() == 1, "still down: kept"
        fake.down = False
        for _ in range(100):
            if await queue.count() == 0:
                break
            await asyncio.sleep(0.05)
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)
    assert await queue.count() == 0
    (entity,) = fake.entities.values()
    assert entity.attributes == {"lZGmxYbs97q": CODE}
    stored = stored_bytes(settings.data_dir)  # done() folded the WAL in: no checkpoint here
    assert CODE.encode() not in stored, "a completed registration leaves no code in the file"


@pytest.mark.anyio
async def test_a_completed_registration_is_erased_from_the_queue_file(tmp_path, stores):
    queue = queue_in(stores)
    done, waiting = Registration.new(CODE, program()), Registration.new("KEPTCODE42", program())
    await queue.add(done)
    await queue.add(waiting)
    await queue.done(done.tracked_entity)
    stored = stored_bytes(tmp_path / "data")
    assert b"KEPTCODE42" in stored, "the waiting registration is still there"
    assert CODE.encode() not in stored, "the completed one is overwritten, not just unlinked"


@pytest.mark.anyio
async def test_a_refused_connection_queues_the_registration(tmp_path, stores):
    dead = f"http://127.0.0.1:{free_port()}"
    context = context_for(settings_for(dead, tmp_path), stores=stores)
    assert await register.register({"value": CODE}, context) == {"status": "queued"}
    assert await queue_in(stores).count() == 1


@pytest.mark.anyio
async def test_without_stores_a_registration_that_must_wait_reaches_on_error(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ActionError, match="the queue failed") as failed:
        await register.register({"value": CODE}, context_for(settings_for(dead, tmp_path)))
    assert failed.value.user_message == "The health registry cannot be reached right now."


@pytest.mark.anyio
async def test_the_worker_counts_an_import_that_already_went_through_as_done(fake, stores):
    queue = queue_in(stores)
    registration = Registration.new(CODE, program())
    await queue.add(registration)
    await queue.add(registration)  # adding the same UIDs twice keeps one row
    fake.seed(CODE, uid=registration.tracked_entity)  # committed, but the answer was lost
    async with httpx.AsyncClient() as http:
        assert await drain(queue, client_for(fake, http)) == 1
    assert await queue.count() == 0
    assert len(fake.entities) == 1


@pytest.mark.anyio
async def test_the_worker_keeps_a_rejected_registration_for_later(fake, stores):
    queue = queue_in(stores)
    bad = ProgramSettings(**{**PROGRAM, "tracked_entity_type": "not-a-uid"})
    registration = Registration(CODE, bad, "notAUid", generate_uid(), "2026-01-01T00:00:00.000")
    await queue.add(registration)
    async with httpx.AsyncClient() as http:
        assert await drain(queue, client_for(fake, http), backoff=lambda n: 60.0) == 0
    assert await queue.count() == 1
    assert await queue.due() == [], "postponed by the backoff"


# -- potential duplicates ----------------------------------------------------------------


@pytest.mark.anyio
async def test_two_entities_with_one_code_are_flagged_as_potential_duplicates(fake, tmp_path):
    first, second = fake.seed(CODE), fake.seed(CODE)
    context = context_for(settings_for(fake.url, tmp_path))
    result = await find.find({"value": CODE}, context)
    assert result == {"found": True, "count": 2, "ids": [first, second]}
    (post,) = fake.seen("POST", "/api/potentialDuplicates")
    assert post.body == {"original": first, "duplicate": second}
    assert fake.duplicates == {(first, second)}
    again = await register.register({"value": CODE}, context)
    assert again == {"status": "exists", "id": first}, "an already-flagged pair (409) is fine"
    assert len(fake.seen("POST", "/api/potentialDuplicates")) == 2


@pytest.mark.anyio
async def test_flag_duplicate_action(fake, tmp_path):
    first, second = fake.seed(CODE), fake.seed("OTHERCODE1")
    context = context_for(settings_for(fake.url, tmp_path))
    arguments = {"original": first, "duplicate": second}
    assert await flag_duplicate.flag(arguments, context) == {"status": "flagged"}
    assert await flag_duplicate.flag(arguments, context) == {"status": "already_flagged"}
    with pytest.raises(ActionError, match="two different"):
        await flag_duplicate.flag({"original": first, "duplicate": "nope"}, context)


def test_the_plugin_offers_its_actions_and_a_uid_generator():
    actions = collect_actions(make_plugin_manager())
    assert actions["dhis2.register"].required == ("value",)
    assert actions["dhis2.flag_duplicate"].parameters == ("original", "duplicate")
    assert all(is_uid(generate_uid()) for _ in range(200))


# -- settings check -------------------------------------------------------------------


FLOW_WITH_MISTAKES = """\
id: reg
settings:
  locales: [en]
  default_locale: en
  dhis2:
    program: IpHINAT79U
    atribute: lZGmxYbs97q
    org_unit: DiszpKrYNg8
    tracked_entity_type: nEenWmSyUEp
    org_unit_mode: EVERYWHERE
steps:
  q: {kind: ask, text: "Code?", save_as: code}
  reg: {kind: action, action: dhis2.register, with: {value: "{{ code }}"}, save_as: r}
  done: {kind: end, text: "ok"}
"""


def test_settings_problems_are_located_at_file_line_column(tmp_path):
    path = tmp_path / "reg.yaml"
    path.write_text(FLOW_WITH_MISTAKES)
    _, problems = load_flows([path], Toolkit.create(None, make_plugin_manager()))
    assert [str(p) for p in problems] == [
        f"{path}:6:5: settings.dhis2: missing attribute (each is an 11-character UID)",
        f"{path}:6:14: settings.dhis2.program: 'IpHINAT79U' is not a DHIS-2 UID "
        "(11 letters or digits, starting with a letter, e.g. IpHINAT79UW)",
        f"{path}:7:15: settings.dhis2.atribute: unknown key 'atribute' (did you mean 'attribute'?)",
        f"{path}:10:20: settings.dhis2.org_unit_mode: unknown mode 'EVERYWHERE' "
        "(known: ACCESSIBLE, ALL, CAPTURE, CHILDREN, DESCENDANTS, SELECTED)",
    ]


def test_palabre_check_reports_a_missing_dhis2_section_at_the_step(tmp_path, capsys):
    path = tmp_path / "reg.yaml"
    path.write_text(
        FLOW_WITH_MISTAKES.split("  dhis2:")[0] + "steps:" + FLOW_WITH_MISTAKES.split("steps:")[1]
    )
    status = cli.main(["check", str(path)], plugins=make_plugin_manager())
    out = capsys.readouterr().out
    assert status == 1
    assert f"{path}:7:31: steps.reg.action: dhis2.register needs a settings.dhis2 section" in out


def test_a_correct_section_has_no_problem():
    flow, _ = parse_flow(
        parse_source(
            FLOW_WITH_MISTAKES.replace("IpHINAT79U\n", "IpHINAT79UW\n")
            .replace("atribute", "attribute")
            .replace("EVERYWHERE", "ALL"),
            "ok.yaml",
        )
    )
    from palabre_dhis2.settings_check import check_dhis2_settings

    assert flow is not None and check_dhis2_settings(flow) == []


# -- palabre dhis2 ping ---------------------------------------------------------------


@pytest.fixture
def dhis2_env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("DHIS2_USERNAME", "DHIS2_PASSWORD", "DHIS2_TOKEN", "DHIS2_VERSION", "DHIS2_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_ping_prints_the_version_and_the_user(fake, dhis2_env, capsys):
    dhis2_env.setenv("DHIS2_URL", fake.url)
    dhis2_env.setenv("DHIS2_TOKEN", TOKEN)
    assert cli.main(["dhis2", "ping"], plugins=make_plugin_manager()) == 0
    assert capsys.readouterr().out == f"DHIS-2 2.41.1 at {fake.url}: signed in as admin\n"
    assert [r.path for r in fake.requests] == ["/api/system/info", "/api/me"]


def test_ping_with_bad_credentials_exits_1(fake, dhis2_env, capsys):
    dhis2_env.setenv("DHIS2_URL", fake.url)
    dhis2_env.setenv("DHIS2_USERNAME", USER)
    dhis2_env.setenv("DHIS2_PASSWORD", "wrong")
    assert cli.main(["dhis2", "ping"], plugins=make_plugin_manager()) == 1
    err = capsys.readouterr().err
    assert "HTTP 401" in err and "DHIS2_USERNAME and DHIS2_PASSWORD" in err
    assert "wrong" not in err


def test_ping_warns_about_a_version_on_the_wrong_side_of_the_renames(fake, dhis2_env, capsys):
    fake.version = "2.42"
    dhis2_env.setenv("DHIS2_URL", fake.url)
    dhis2_env.setenv("DHIS2_TOKEN", TOKEN)
    dhis2_env.setenv("DHIS2_VERSION", "2.40")
    assert cli.main(["dhis2", "ping"], plugins=make_plugin_manager()) == 1
    assert "set DHIS2_VERSION=2.42" in capsys.readouterr().err


def test_ping_without_a_url_or_with_the_server_down(dhis2_env, capsys):
    assert cli.main(["dhis2", "ping"], plugins=make_plugin_manager()) == 2
    assert "DHIS2_URL is not set" in capsys.readouterr().err
    dhis2_env.setenv("DHIS2_URL", f"http://127.0.0.1:{free_port()}")
    assert cli.main(["dhis2", "ping"], plugins=make_plugin_manager()) == 1
    assert "did not answer GET /api/system/info (ConnectError)" in capsys.readouterr().err


# -- end to end: a flow registers through the engine ----------------------------------


REGISTRATION_FLOW = f"""\
id: reg
settings:
  locales: [en]
  default_locale: en
  dhis2: {{program: {PROGRAM["program"]}, attribute: {PROGRAM["attribute"]}, org_unit: {PROGRAM["org_unit"]}, tracked_entity_type: {PROGRAM["tracked_entity_type"]}}}
steps:
  ask_code:
    kind: ask
    text: "What is your code?"
    save_as: code
  register:
    kind: action
    action: dhis2.register
    with: {{value: "{{{{ code }}}}"}}
    save_as: reg
    on_error: failed
  route:
    kind: branch
    cases:
      - {{when: "reg.status == 'exists'", next: known}}
      - {{when: "reg.status == 'queued'", next: later}}
  created:
    kind: end
    text: "Your code {{{{ code }}}} is registered."
  known:
    kind: end
    text: "Your code {{{{ code }}}} was already registered."
  later:
    kind: end
    text: "Your code is {{{{ code }}}}. Your registration will complete soon."
  failed:
    kind: end
    text: "Your code is {{{{ code }}}}."
"""


@pytest.mark.anyio
async def test_a_flow_registers_codes_through_the_engine(fake, tmp_path, monkeypatch, caplog):
    flow = tmp_path / "reg.yaml"
    flow.write_text(REGISTRATION_FLOW)
    data = tmp_path / "data"
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "DHIS2_URL": fake.url,
        "DHIS2_TOKEN": TOKEN,
        "DHIS2_VERSION": "2.41",
        "DHIS2_RETRY_DELAYS": "0.01",
        "PALABRE_DATA_DIR": str(data),
        "PALABRE_SECRET": "dhis2-test-secret-" + "0" * 32,
    }.items():
        monkeypatch.setenv(name, value)
    caplog.set_level("DEBUG", logger="palabre")
    engine = build_engine([flow], Settings.from_env())  # the one configuration door
    try:

        async def say(contact: str, *texts: str) -> str:
            for text in texts:
                reply = await engine.handle(Inbound(contact, text))
            return reply.messages[-1].text

        assert await say(PHONE, "hello") == "What is your code?"
        assert await say(PHONE, CODE) == f"Your code {CODE} is registered."
        assert (
            await say("+243810000002", "hello", CODE) == f"Your code {CODE} was already registered."
        )
        fake.down = True
        later = await say("+243810000003", "hello", "NEWCODE001")
        assert later == "Your code is NEWCODE001. Your registration will complete soon."
    finally:
        await engine.aclose()
    assert len(fake.entities) == 1
    waiting = open_stores(Settings(data_dir=data))
    try:
        assert await queue_in(waiting).count() == 1
    finally:
        await waiting.aclose()
    for secret in (CODE, "NEWCODE001", PHONE, TOKEN):
        assert secret not in caplog.text, "logs carry ids and statuses only"


LOOKUP_FLOW = f"""\
id: lookup
settings:
  locales: [en]
  default_locale: en
  dhis2: {{program: {PROGRAM["program"]}, attribute: {PROGRAM["attribute"]}, org_unit: {PROGRAM["org_unit"]}, tracked_entity_type: {PROGRAM["tracked_entity_type"]}, org_unit_mode: ACCESSIBLE}}
steps:
  ask_code: {{kind: ask, text: "Which code?", save_as: code}}
  lookup: {{kind: action, action: dhis2.find, with: {{value: "{{{{ code }}}}"}}, save_as: found, on_error: down}}
  route: {{kind: branch, cases: [{{when: "found.found", next: known}}], else: unknown}}
  known: {{kind: end, text: "Known ({{{{ found.count }}}})."}}
  unknown: {{kind: end, text: "Unknown."}}
  down: {{kind: end, text: "Try later."}}
"""


@pytest.mark.anyio
async def test_a_flow_looks_a_code_up_with_dhis2_find(fake, tmp_path):
    flow = tmp_path / "lookup.yaml"
    flow.write_text(LOOKUP_FLOW)
    settings = settings_for(fake.url, tmp_path)
    engine = build_engine([flow], settings)  # actions get these settings as settings_env
    fake.seed(CODE)
    try:
        await engine.handle(Inbound(PHONE, "hello"))
        reply = await engine.handle(Inbound(PHONE, CODE))
        assert [m.text for m in reply.messages] == ["Known (1)."]
        fake.down = True
        await engine.handle(Inbound(PHONE, "hello"))
        reply = await engine.handle(Inbound(PHONE, CODE))
        texts = [m.text for m in reply.messages]
        assert texts == ["The health registry cannot be reached right now.", "Try later."]
    finally:
        await engine.aclose()
    params = fake.seen("GET", "/api/tracker/trackedEntities")[0].params
    assert ("orgUnitMode", "ACCESSIBLE") in params
    assert "orgUnits" not in dict(params), "ACCESSIBLE takes no org units"


def _host(settings: Settings, http: httpx.AsyncClient, tmp_path: Path, stores: Stores) -> Host:
    flow = tmp_path / "host.yaml"
    flow.write_text(
        textwrap.dedent("""\
        id: host
        settings: {locales: [en], default_locale: en}
        steps:
          bye: {kind: end, text: "bye"}
    """)
    )
    engine = build_engine([flow], settings, stores=stores)
    return Host(engine, settings, http)
