"""HTTP answers for failures that transports share."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger("palabre.web")
RETRY_AFTER_SECONDS = 5  # an outage worth retrying (a failover, a restart) lasts seconds


async def store_failed(request: Request, exc: Exception) -> Response:
    """The store is down: nothing was written, the provider should retry."""
    log.error("store failure while handling %s: %s", request.url.path, type(exc).__name__)
    return JSONResponse(
        {"error": "temporarily unavailable, retry later"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
