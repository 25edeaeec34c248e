"""HTTP to DHIS-2 through an injected `httpx.AsyncClient`, with bounded retries.

Each attempt has an overall deadline of `config.timeout` seconds, from sending the
request to the last byte of the answer: httpx's own timeouts apply per read, so a server
dribbling one byte at a time would otherwise hold a webhook open for ever.

Timeouts, connection errors and 5xx answers are retried after each pause of
`retry_delays`; when none is left, `Dhis2Unavailable`. A 4xx is never retried: it
raises `Dhis2Rejected`, except the statuses the caller says it can read (the tracker
importer's 409 carries an import report). Logs carry the path and status only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx

from palabre_dhis2.config import Dhis2Config
from palabre_dhis2.errors import Dhis2Rejected, Dhis2Unavailable

log = logging.getLogger("palabre.dhis2")

Params = Sequence[tuple[str, str]]


class Dhis2Client:
    """Calls DHIS-2's web API at `config.url` with the configured credentials."""

    def __init__(self, config: Dhis2Config, http: httpx.AsyncClient) -> None:
        self.config = config
        self.http = http

    async def get(self, path: str, params: Params = ()) -> Any:
        """GET `path` (e.g. `/api/me`) and return its JSON body."""
        response = await self.request("GET", path, params=params)
        return _json(response)

    async def post(
        self, path: str, body: Any, params: Params = (), *, readable: tuple[int, ...] = ()
    ) -> tuple[int, Any]:
        """POST JSON; returns (status, JSON body) for 2xx and for the `readable` statuses."""
        response = await self.request("POST", path, params=params, json=body, readable=readable)
        return response.status_code, _json(response)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params = (),
        json: Any = None,
        readable: tuple[int, ...] = (),
    ) -> httpx.Response:
        """Send one request, retrying timeouts and 5xx; see the module docstring."""
        url = self.config.url + path
        pauses = [*self.config.retry_delays, None]
        for attempt, pause in enumerate(pauses, start=1):
            try:
                async with asyncio.timeout(self.config.timeout):
                    response = await self.http.request(
                        method,
                        url,
                        params=list(params),
                        json=json,
                        headers=self.config.headers(),
                        auth=self.config.auth() or httpx.USE_CLIENT_DEFAULT,
                        timeout=self.config.timeout,
                    )
            except TimeoutError:
                problem = f"no complete answer within {self.config.timeout:g} s"
            except httpx.TransportError as exc:  # refused connections, resets, read timeouts
                problem = type(exc).__name__
            else:
                if response.status_code < 400 or response.status_code in readable:
                    return response
                if response.status_code < 500:
                    raise _rejected(method, path, response)
                problem = f"HTTP {response.status_code}"
            log.warning(
                "DHIS-2 %s %s failed (%s), attempt %d of %d",
                method,
                path,
                problem,
                attempt,
                len(pauses),
            )
            if pause is None:
                break
            await asyncio.sleep(pause)
        raise Dhis2Unavailable(
            f"DHIS-2 at {self.config.url} did not answer {method} {path} ({problem}) "
            f"after {len(pauses)} attempt(s)"
        )


def _rejected(method: str, path: str, response: httpx.Response) -> Dhis2Rejected:
    status = response.status_code
    hint = " (check the DHIS-2 credentials)" if status in (401, 403) else ""
    return Dhis2Rejected(
        f"DHIS-2 refused {method} {path} with HTTP {status}{hint}",
        status=status,
        body=_json(response),
    )


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


@asynccontextmanager
async def open_client(
    config: Dhis2Config, http: httpx.AsyncClient | None = None
) -> AsyncIterator[Dhis2Client]:
    """A client on the shared `http`, or on a client of its own closed on exit."""
    if http is not None:
        yield Dhis2Client(config, http)
        return
    async with httpx.AsyncClient() as own:
        yield Dhis2Client(config, own)
