"""The Starlette app behind `palabre serve`, assembled from constructor arguments.

The lifespan builds the engine (plugins, flows, session store, durable stores) and one
shared HTTP client, checks the database schema (behind the code: it refuses to start,
naming `palabre db upgrade`), and starts every transport; a transport that is not
configured refuses to start, unless `insecure_dev` is set. A store outage answers 503 so
that providers retry; a malformed request is a 4xx.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pluggy
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from palabre.api.routes import api_routes
from palabre.bootstrap import build_engine
from palabre.config import Settings
from palabre.errors import StoreError
from palabre.logs import exception_summary
from palabre.metrics import Metrics
from palabre.plugins import make_plugin_manager
from palabre.stores.base import SessionStore
from palabre.transports import Host, Transport
from palabre.web.body import BodyBudget
from palabre.web.errors import store_failed
from palabre.web.metrics import WebhookMetrics, metrics, webhook_segments

log = logging.getLogger("palabre.web")


def create_app(
    flow_paths: Iterable[str | Path],
    settings: Settings,
    *,
    plugins: pluggy.PluginManager | None = None,
    insecure_dev: bool = False,
    store: SessionStore | None = None,
    http: httpx.AsyncClient | None = None,
    body_budget: BodyBudget | None = None,
    workers: bool = True,
) -> Starlette:
    """The web app serving the flows at `flow_paths` through every registered transport.

    `body_budget` bounds the request bodies held at once, across every endpoint (a new
    default one, never shared with another app, unless given). The app's metrics
    (`app.state.metrics`, served at /metrics) are its own, never shared either. Without
    `workers`, the background jobs (the outbox worker, the event starter, the purges) are
    left to `palabre worker` processes."""
    manager = plugins or make_plugin_manager()
    transports: list[Transport] = [t for batch in manager.hook.register_transports() for t in batch]
    paths = list(flow_paths)
    counted = Metrics()

    if insecure_dev:  # `palabre serve` prints the banner once; the lifespan may run twice
        settings.dev = True

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        client = http or httpx.AsyncClient(timeout=httpx.Timeout(10.0))
        engine = build_engine(
            paths, settings, plugins=manager, store=store, http=client, metrics=counted
        )
        host = Host(engine, settings, client, insecure_dev, {t.name: t for t in transports})
        app.state.host = host
        app.state.events_api = None  # made from this host at the first event
        jobs: list[asyncio.Task[None]] = []
        try:
            created = await host.stores.open()  # StoreError when the schema is behind
            if created:
                log.info(created)
            for transport in transports:
                await transport.startup(host)
            jobs = [
                asyncio.create_task(keep_running(worker, host))
                for batch in (manager.hook.register_workers() if workers else [])
                for worker in batch
            ]
            yield
        finally:
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            for transport in transports:
                await transport.shutdown()
            await engine.aclose()
            if http is None:
                await client.aclose()

    routes: list[BaseRoute] = [
        *api_routes(),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/media/{token}", media),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    owned = [(transport.name, route) for transport in transports for route in transport.routes()]
    routes += [route for _, route in owned]
    webhooks = Middleware(WebhookMetrics, metrics=counted, transports=webhook_segments(owned))
    app = Starlette(
        routes=routes,
        middleware=[webhooks],
        lifespan=lifespan,
        exception_handlers={StoreError: store_failed},
    )
    app.state.body_budget = body_budget or BodyBudget()
    app.state.metrics = counted
    return app


async def keep_running(
    worker: Callable[[Host], Awaitable[None]], host: Host, *, pause: float = 5.0
) -> None:
    """Run a background job; if it fails, log why and start it again after `pause` seconds."""
    while True:
        try:
            await worker(host)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error(
                "background job %s failed: %s; restarting in %g s",
                _name(worker),
                exception_summary(exc),
                pause,
            )
            await asyncio.sleep(pause)


def _name(worker: object) -> str:
    return getattr(worker, "__qualname__", type(worker).__name__)


async def media(request: Request) -> Response:
    """An image Palabre serves (a QR code...): only with a valid, unexpired token."""
    host: Host = request.app.state.host
    store = host.stores.media
    media_id = store.verify(request.path_params["token"].removesuffix(".png"))
    if media_id is None:
        return PlainTextResponse("forbidden", status_code=403)
    item = await store.get(media_id)
    if item is None:
        return PlainTextResponse("not found", status_code=404)
    headers = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}
    return Response(item.data, media_type=item.content_type, headers=headers)


async def healthz(request: Request) -> Response:
    """Liveness: the process answers."""
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    """Readiness: the session store and the database answer."""
    host: Host = request.app.state.host
    try:
        await host.engine.store.ping()
        await host.stores.ping()
    except StoreError:
        return PlainTextResponse("store unavailable", status_code=503)
    return PlainTextResponse("ready")
