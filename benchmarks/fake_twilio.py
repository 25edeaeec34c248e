"""A fake Twilio Messages API on loopback, capped like an account, that counts what it took.

    python benchmarks/fake_twilio.py --port 8003 --cap 50/second

    POST /2010-04-01/Accounts/<sid>/Messages.json   201 {"sid": "SM...", "status": "queued"},
                                                    or 429 {"code": 20429} beyond the cap
    GET  /accepted?at_least=N&wait=S   the count of accepted messages, once it is at least N
                                       (or after S seconds): a benchmark waits on it to act
                                       at an exact point without polling
    GET  /stats                        every accepted message's `To` and arrival time (Unix
                                       seconds), and how many requests were refused

A request beyond the cap in any moving one-second window (the `limits` library's moving
window, as tests/test_broadcast_command.py's CappedTwilio counts) is refused as Twilio
refuses it, and counted. It runs in its own process, so that its CPU is not the
benchmark's, and it checks no credentials.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from urllib.parse import parse_qs

import uvicorn
from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

MESSAGES = "/2010-04-01/Accounts/{account}/Messages.json"
TOO_MANY = {
    "code": 20429,
    "message": "Too Many Requests",
    "more_info": "https://www.twilio.com/docs/errors/20429",
    "status": 429,
}


class CappedMessages:
    """The Messages resource behind a cap: what it accepted (to whom, when) and refused."""

    def __init__(self, cap: str) -> None:
        self.cap = parse(cap)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.accepted: list[tuple[str, float]] = []
        self.refused = 0
        self.changed = asyncio.Condition()

    def app(self) -> Starlette:
        routes = [
            Route(MESSAGES, self.create, methods=["POST"]),
            Route("/accepted", self.count),
            Route("/stats", self.stats),
        ]
        return Starlette(routes=routes)

    async def create(self, request: Request) -> JSONResponse:
        form = parse_qs((await request.body()).decode())
        arrived = time.time()
        if not await self.limiter.hit(self.cap, "account"):
            self.refused += 1
            return JSONResponse(TOO_MANY, status_code=429)
        to = form["To"][0]
        self.accepted.append((to, arrived))
        async with self.changed:
            self.changed.notify_all()
        body = {"sid": "SM" + uuid.uuid4().hex, "status": "queued", "to": to}
        return JSONResponse(body, status_code=201)

    async def count(self, request: Request) -> JSONResponse:
        at_least = int(request.query_params.get("at_least", "0"))
        wait = float(request.query_params.get("wait", "0"))
        async with self.changed:
            reached = self.changed.wait_for(lambda: len(self.accepted) >= at_least)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reached, wait)
        return JSONResponse({"accepted": len(self.accepted)})

    async def stats(self, request: Request) -> JSONResponse:
        return JSONResponse({"accepted": self.accepted, "refused": self.refused})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cap", default="50/second", help="as `limits` reads it")
    args = parser.parse_args()
    app = CappedMessages(args.cap).app()
    # A client keeps its connections open; uvicorn's 5 s would race its pool reusing them.
    uvicorn.run(app, port=args.port, log_level="error", timeout_keep_alive=60)
