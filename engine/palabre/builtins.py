"""The built-in plugin: core actions and template filters, registered like any other plugin.

Its hooks are `trylast`, so a third-party plugin can replace any of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from palabre.actions import Action
from palabre.actions.registry import ACTION as REMEMBER
from palabre.api import rates as api_rates
from palabre.api.starter import run_starter
from palabre.config import Settings
from palabre.hookspecs import hookimpl
from palabre.i18n.filters import FILTERS
from palabre.outbox import limits, policy, retention
from palabre.outbox.worker import run_worker
from palabre.stores.base import SessionStore
from palabre.stores.bundle import Stores, open_stores
from palabre.stores.factory import open_store
from palabre.transports import Host


@hookimpl(trylast=True)
def register_actions() -> list[Action]:
    return [REMEMBER]


@hookimpl(trylast=True)
def register_template_filters() -> dict[str, Callable[..., Any]]:
    return dict(FILTERS)


async def purge_media(host: Host) -> None:
    """Delete expired media (QR codes...) every ten minutes."""
    while True:
        await host.stores.media.purge()
        await asyncio.sleep(600)


@hookimpl(trylast=True)
def register_workers() -> list[Callable[[Host], Awaitable[None]]]:
    return [purge_media, retention.purge_outbox, run_worker, run_starter]


@hookimpl(trylast=True)
def check_settings(settings: Settings) -> list[str]:
    """The outbox's settings (rates, pacing, attempts, backoff, lease, retention) and the
    events API's rates."""
    found = limits.problems(settings) + policy.problems(settings) + retention.problems(settings)
    return found + api_rates.problems(settings)


@hookimpl(trylast=True)
def make_session_store(settings: Settings) -> SessionStore:
    return open_store(
        redis_url=settings.redis_url, data_dir=settings.data_dir, ttl_seconds=settings.session_ttl
    )


@hookimpl(trylast=True)
def make_stores(settings: Settings, clock: Callable[[], float]) -> Stores:
    return open_stores(settings, clock)
