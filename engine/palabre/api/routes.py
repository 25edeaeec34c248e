"""`POST /api/v1/events` and `GET /api/v1/openapi.json`.

A request is answered in this order, each refusal a problem document (palabre.api.problems):
the key (`Authorization: Bearer plb_...`: 401), the key's rate (PALABRE_API_RATE, 100 per
second by default, in a moving window shared through Redis when set: 429 with
Retry-After), the media type (415), the body (capped at 64 KiB before it is read: 413;
not JSON: 400), the fields (422, each named), then the delivery: 202 with the ids of
the messages queued, the same again for the same (key, id).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from palabre.api.delivery import EventDesk
from palabre.api.keys import ApiKeys, key_hasher
from palabre.api.openapi import document
from palabre.api.problems import Problem, unauthorized
from palabre.api.requests import read_event
from palabre.config import SECRET, Settings
from palabre.config_checks import shown
from palabre.outbox.schedules import storage_for
from palabre.transports import Host
from palabre.web.body import BodyError, parse_json, read_body

MAX_BODY = 64 * 1024
RATE, DEFAULT_RATE = "PALABRE_API_RATE", "100/second"


@dataclass
class EventsApi:
    """What the routes need, made once per app from its host."""

    keys: ApiKeys
    desk: EventDesk
    limiter: MovingWindowRateLimiter
    rate: RateLimitItem
    region: str | None

    @classmethod
    def for_host(cls, host: Host) -> EventsApi:
        """The API over `host`'s engine, stores and settings."""
        settings = host.settings
        keys = ApiKeys(host.stores.database, key_hasher(settings.secret(SECRET)))
        limiter = MovingWindowRateLimiter(storage_for(settings.redis_url))
        rate = parse(settings.option(RATE) or DEFAULT_RATE)  # checked at start (problems)
        return cls(keys, EventDesk(host.engine), limiter, rate, settings.default_region)


def api_routes() -> list[BaseRoute]:
    """The events API's routes, for the web app."""
    return [
        Route("/api/v1/events", post_event, methods=["POST"]),
        Route("/api/v1/openapi.json", openapi, methods=["GET"]),
    ]


async def post_event(request: Request) -> Response:
    """Take one event: 202 with the messages' ids, or a problem document."""
    api = _api(request)
    try:
        key_name = await _authenticated(request, api)
        await _within_rate(api, key_name)
        body = await _json_body(request)
        event = read_event(body, api.region, lambda name: bool(api.desk.flows_for(name)))
        answer = await api.desk.deliver(key_name, event)
    except Problem as problem:
        return problem.response()
    return JSONResponse(answer, 202)


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
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise unauthorized("send the key as `Authorization: Bearer plb_...`")
    name = await api.keys.owner(key.strip())
    if name is None:
        raise unauthorized("this key is unknown or revoked")
    return name


async def _within_rate(api: EventsApi, key_name: str) -> None:
    if await api.limiter.hit(api.rate, "api", key_name):
        return
    stats = await api.limiter.get_window_stats(api.rate, "api", key_name)
    wait = max(1, math.ceil(stats.reset_time - time.time()))
    raise Problem(
        429,
        "rate-limited",
        "Too many events",
        f"this key may send {api.rate}; wait {wait} s",
        headers={"Retry-After": str(wait)},
    )


async def _json_body(request: Request) -> object:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise Problem(415, "media-type", "Send JSON", "the body must be application/json")
    try:
        return parse_json(await read_body(request, MAX_BODY))
    except BodyError as exc:
        raise Problem(exc.status_code, "bad-body", "The body cannot be read", exc.reason) from None


def problems(settings: Settings) -> list[str]:
    """One line when PALABRE_API_RATE is not a rate `limits` reads."""
    raw = settings.option(RATE)
    if not raw:
        return []
    try:
        readable = parse(raw).amount >= 1
    except ValueError:
        readable = False
    return [] if readable else [f"{RATE}={shown(raw)} is not a rate: write it like 100/second"]
