"""The DHIS-2 plugin against a fake DHIS-2 served on loopback (no mocks of httpx or of us).

`FakeDhis2` keeps tracked entities in memory and speaks the documented shapes: the
2.40 query names (`orgUnit`, `ouMode`) and `instances` pages, or the 2.41+ names
(`orgUnits`, `orgUnitMode`; the old ones removed in 2.42) and `trackedEntities` with a
`pager`; the tracker importer's report (409 ERROR with E1064 on a taken code, E1002 on
a reused UID); `/api/potentialDuplicates`. It can be switched down (503), made slow, or
made to fail the next requests, and it records every request it receives.

Also the fixtures (`fake`, `stores`) and helpers the DHIS-2 tests share.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from palabre.actions import ActionContext
from palabre.config import Settings
from palabre.stores.bundle import Stores, open_stores
from palabre_dhis2.client import Dhis2Client
from palabre_dhis2.config import Dhis2Config
from palabre_dhis2.params import parse_version
from palabre_dhis2.program import ProgramSettings
from palabre_dhis2.queue import RegistrationQueue
from palabre_dhis2.uid import generate_uid, is_uid

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
