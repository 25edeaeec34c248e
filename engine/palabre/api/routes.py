"""`POST /api/v1/events`, `GET /api/v1/events/{id}` and `GET /api/v1/openapi.json`.

A request is answered in this order, each refusal a problem document (palabre.api.problems):
the client's failed authentications (past PALABRE_API_FAILED_AUTH_RATE: 429 with
Retry-After, before the key is looked up), the key (`Authorization: Bearer plb_...`: 401),
the key's rate (PALABRE_API_RATE: 429 with Retry-After; both rates in palabre.api.rates),
the media type (415), the body (capped at 64 KiB before it is read: 413; not JSON: 400;
too slow: 408; no room to hold it now: 503), the fields (422, each named), then the
event is queued (palabre.api.delivery): 202 with where to read what became of it, the
same again for the same (key, id); with `Prefer: wait=N` (palabre.api.prefer), also its
status and its messages' ids once its flows ran or N seconds passed; 503 with Retry-After
when the database is unavailable.
`GET /api/v1/events/{id}` (the same key; a client's failed authentications count, but not
against the key's rate of events) tells an event's status and its messages', or 404.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from palabre.api.delivery import EventDesk
from palabre.api.keys import ApiKeys, key_hasher
from palabre.api.openapi import document
from palabre.api.prefer import preferred_wait
from palabre.api.problems import Problem, unauthorized
from palabre.api.rates import ApiRates
from palabre.api.requests import read_event
from palabre.config import SECRET
from palabre.errors import StoreError
from palabre.transports import Host
from palabre.web.body import BodyError, BodyTooSlow, ServerBusy, parse_json, read_body
from palabre.web.errors import RETRY_AFTER_SECONDS

log = logging.getLogger("palabre.api")

MAX_BODY = 64 * 1024


@dataclass
class EventsApi:
    """What the routes need, made once per app from its host."""

    keys: ApiKeys
    desk: EventDesk
    rates: ApiRates
    region: str | None

    @classmethod
    def for_host(cls, host: Host) -> EventsApi:
        """The API over `host`'s engine, stores and settings."""
        settings = host.settings
        keys = ApiKeys(host.stores.database, key_hasher(settings.secret(SECRET)))
        rates = ApiRates.from_settings(settings)
        return cls(keys, EventDesk(host.engine), rates, settings.default_region)


def api_routes() -> list[BaseRoute]:
    """The events API's routes, for the web app."""
    return [
        Route("/api/v1/events", post_event, methods=["POST"]),
        Route("/api/v1/events/{event_id:path}", get_event, methods=["GET"]),
        Route("/api/v1/openapi.json", openapi, methods=["GET"]),
    ]


async def post_event(request: Request) -> Response:
    """Take one event: 202 with where to read what became of it (and, after `Prefer:
    wait=N`, what did within N seconds: its status and its messages' ids), or a problem
    document."""
    api = _api(request)
    try:
        key_name = await _authenticated(request, api)
        await api.rates.refuse_if_too_fast(key_name)
        body = await _json_body(request)
        event = read_event(body, api.region, lambda name: bool(api.desk.flows_for(name)))
        wait = preferred_wait(request.headers.getlist("prefer"))
        answer = await api.desk.take(key_name, event, wait)
    except Problem as problem:
        return problem.response()
    except StoreError as exc:
        return _unavailable(exc).response()
    applied = {"Preference-Applied": f"wait={wait}"} if wait else None
    return JSONResponse(answer, 202, headers=applied)


async def get_event(request: Request) -> Response:
    """What became of one of the key's events: its status and its messages', or 404."""
    api = _api(request)
    try:
        key_name = await _authenticated(request, api)  # PALABRE_API_RATE counts events only
        found = await api.desk.queue.status(key_name, request.path_params["event_id"])
    except Problem as problem:
        return problem.response()
    except StoreError as exc:
        return _unavailable(exc).response()
    if found is None:
        detail = "this key sent no event with this id, or it was forgotten (retention)"
        return Problem(404, "not-found", "No such event", detail).response()
    return JSONResponse(found.document())


async def openapi(request: Request) -> Response:
    """The OpenAPI document of the events API."""
    return JSONResponse(document())


def _api(request: Request) -> EventsApi:
    state = request.app.state
    if getattr(state, "events_api", None) is None:
        state.events_api = EventsApi.for_host(state.host)
    api: EventsApi = state.events_api
    return api


async def _authenticated(request: Request, api: EventsApi) -> str:
    """The name of the request's key; a 401, or a 429 when its client failed too often."""
    client = api.rates.client_of(request)
    await api.rates.refuse_if_locked_out(client)  # before the key costs a database read
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        await api.rates.failed(client)
        raise unauthorized("send the key as `Authorization: Bearer plb_...`")
    name = await api.keys.owner(key.strip())
    if name is None:
        await api.rates.failed(client)
        raise unauthorized("this key is unknown or revoked")
    return name


async def _json_body(request: Request) -> object:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise Problem(415, "media-type", "Send JSON", "the body must be application/json")
    try:
        return parse_json(await read_body(request, MAX_BODY))
    except BodyError as exc:
        raise Problem(exc.status_code, "bad-body", "The body cannot be read", exc.reason) from None
    except (ServerBusy, BodyTooSlow) as exc:  # the server's refusals, told like the others
        raise _refused_by_server(exc) from None


def _refused_by_server(exc: ServerBusy | BodyTooSlow) -> Problem:
    """503 (no room to hold the body now) or 408 (it came too slowly), with their headers."""
    headers = dict(exc.headers or {})
    if isinstance(exc, ServerBusy):
        return Problem(503, "busy", "Busy receiving other requests", exc.detail, headers=headers)
    return Problem(408, "too-slow", "The body came too slowly", exc.detail, headers=headers)


def _unavailable(exc: StoreError) -> Problem:
    """503: the database or the session store failed; the caller sends the event again,
    under the same id, after Retry-After."""
    log.error("store failure while taking an event: %s", type(exc).__name__)
    detail = f"the database is unavailable: send the event again in {RETRY_AFTER_SECONDS} s"
    retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return Problem(503, "unavailable", "Unavailable", detail, headers=retry)
