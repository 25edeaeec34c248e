"""Request bodies read safely: capped while they stream in, and JSON parsed within bounds.

Every webhook and the simulator read their body here, so that no request, signed or not,
makes the server hold more than its endpoint's cap in memory, and no body makes the JSON
parser fail with anything but a `BodyError`. Many bodies at once are bounded too: each
app has one `BodyBudget` (create_app makes it) of body bytes held at once, reserved chunk
by chunk while reading and released when the read ends, however it ends; and a body must
arrive whole within the budget's deadline. Those two refusals are not the body's fault,
so they are not BodyErrors the endpoint interprets: they are Starlette HTTPExceptions,
which pass through the endpoint and are answered by the app with their headers:

    BodyError (ValueError)   the body cannot be used: `reason` is safe to answer (it never
    │                        quotes the body), `status_code` is the HTTP status to answer
    ├── BodyTooLarge         413: longer than the endpoint's cap, declared or counted
    └── MalformedBody        400: not strict UTF-8 JSON within the bounds below
    HTTPException (starlette)
    ├── ServerBusy           503 + Retry-After: the budget is spent by other bodies
    └── BodyTooSlow          408: the body did not arrive whole before the deadline

`parse_json` refuses, before or while parsing and never by recursing:
- nesting deeper than `max_depth` (a linear scan of the brackets outside strings, so
  `[[[[…` is refused before the parser could overflow the stack);
- integers longer than MAX_DIGITS digits (Python refuses to convert past 4,300 anyway);
- NaN, Infinity and floats that overflow to infinity (not JSON, and no use to a flow);
- lone surrogates such as `\\udfff`, raw or escaped: no string that cannot be written as
  UTF-8 may reach the engine, its stores or its contact keys.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request

log = logging.getLogger("palabre.web")

# About twenty Meta bodies at their 3 MiB cap at once: far more than providers send at
# once, far less than a small VM's memory, so slow strangers cannot exhaust it.
MAX_HELD_BYTES = 64 * 1024 * 1024
# Twilio and Meta send a body in one go, in milliseconds; a body still coming after this
# many seconds is a slow (or malicious) client holding memory and a connection.
BODY_DEADLINE = 10.0
RETRY_AFTER_SECONDS = 5  # providers retry a 503; a busy spell passes in seconds
MAX_DEPTH = 64  # webhook bodies nest about 10 deep; 64 leaves room for new fields
MAX_DIGITS = 64  # no id, code or count a webhook carries is longer

# A JSON string, its closing quote optional so an unterminated one is consumed in one
# match: the scan never backtracks, whatever the body.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_BRACKETS = b"[]{}"
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _BRACKETS)
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_SURROGATE = re.compile("[\ud800-\udfff]")


class BodyError(ValueError):
    """A request body Palabre cannot use; answer `status_code` with `reason`."""

    status_code = 400

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BodyTooLarge(BodyError):
    """The body is longer than the endpoint accepts (413)."""

    status_code = 413


class MalformedBody(BodyError):
    """The body is not JSON Palabre can use (400)."""


class ServerBusy(HTTPException):
    """Other bodies hold the whole budget: 503, retry later (the connection is closed)."""

    def __init__(self) -> None:
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS), "Connection": "close"}
        super().__init__(503, "busy receiving other requests; retry later", headers)


class BodyTooSlow(HTTPException):
    """The body did not arrive whole before the deadline: 408 (the connection is closed)."""

    def __init__(self, deadline: float) -> None:
        detail = f"the body did not arrive within {deadline:g} s"
        super().__init__(408, detail, {"Connection": "close"})


class BodyBudget:
    """The body bytes one app holds in memory at once, and how long one body may take.

    Every endpoint of the app shares it, so that many bodies, each under its endpoint's
    cap, cannot add up to more than `max_held` bytes. Reserving never waits: a request
    that cannot reserve is refused at once (providers retry), so a flood of slow bodies
    cannot queue up either. No lock: the app runs on one event loop and reserving does
    not await.
    """

    def __init__(self, max_held: int = MAX_HELD_BYTES, deadline: float = BODY_DEADLINE) -> None:
        self.max_held = max_held
        self.deadline = deadline
        self.held = 0
        # One watchdog for every body's deadline, not a timer per request (asyncio.timeout
        # cost about 40 µs per webhook): it cancels a reading task whose body is late.
        self._due: dict[asyncio.Task[Any], float] = {}
        self._late: set[asyncio.Task[Any]] = set()
        self._watchdog: asyncio.Task[None] | None = None

    def watch(self, task: asyncio.Task[Any]) -> None:
        """`task` starts reading a body: cancel it if the body is not in by the deadline."""
        loop = asyncio.get_running_loop()
        self._due[task] = loop.time() + self.deadline
        watchdog = self._watchdog
        if watchdog is None or watchdog.done() or watchdog.get_loop() is not loop:
            self._watchdog = loop.create_task(self._cut_late(), name="palabre-body-deadlines")

    def finished(self, task: asyncio.Task[Any]) -> bool:
        """`task` stopped reading; True when the watchdog cancelled it for being late."""
        self._due.pop(task, None)
        late = task in self._late
        self._late.discard(task)
        return late

    async def _cut_late(self) -> None:
        # A late body is cut between 1 and 1.25 deadlines after it began.
        while self._due:
            await asyncio.sleep(self.deadline / 4)
            now = asyncio.get_running_loop().time()
            for task, due in list(self._due.items()):
                if due <= now and task not in self._late:
                    self._late.add(task)
                    task.cancel()

    def reserve(self, size: int) -> bool:
        """Count `size` more bytes as held; False (nothing counted) when they do not fit."""
        if self.held + size > self.max_held:
            return False
        self.held += size
        return True

    def release(self, size: int) -> None:
        """Count `size` bytes reserved earlier as freed."""
        self.held -= size


def budget_of(request: Request) -> BodyBudget:
    """The budget of the app serving `request` (`app.state.body_budget`, set by create_app);
    an app built otherwise (a test's bare Starlette) gets its own on first use."""
    state = getattr(request.scope.get("app"), "state", None)
    budget = getattr(state, "body_budget", None)
    if not isinstance(budget, BodyBudget):
        budget = BodyBudget()
        if state is not None:
            state.body_budget = budget
    return budget


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, at most `limit` bytes: refused on a larger Content-Length before
    reading, and as soon as the bytes received pass `limit` otherwise (chunked bodies).
    Held within the app's BodyBudget while it comes in: ServerBusy when the next chunk
    does not fit, BodyTooSlow when the whole body is not in before the deadline."""
    if _declares_more(request.headers.get("content-length", ""), limit):
        raise BodyTooLarge(f"the body is larger than {limit} bytes")
    budget = budget_of(request)
    chunks: list[bytes] = []
    task = asyncio.current_task()
    assert task is not None, "a request is read in a task"
    budget.watch(task)
    try:
        await _receive(request, limit, budget, chunks)
        return b"".join(chunks)
    except ClientDisconnect:
        raise BodyError("the client went away before sending the whole body") from None
    except asyncio.CancelledError:
        if not budget.finished(task):
            raise
        task.uncancel()  # the watchdog's cancellation, answered here
        log.warning("request body refused: too slow", extra={"path": request.url.path})
        raise BodyTooSlow(budget.deadline) from None
    finally:
        budget.finished(task)
        budget.release(sum(map(len, chunks)))


async def _receive(request: Request, limit: int, budget: BodyBudget, chunks: list[bytes]) -> None:
    """Append the body's chunks to `chunks`, each reserved in `budget` first."""
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise BodyTooLarge(f"the body is larger than {limit} bytes")
        if not budget.reserve(len(chunk)):
            log.warning("request body refused: budget spent", extra={"path": request.url.path})
            raise ServerBusy()
        chunks.append(chunk)


def _declares_more(declared: str, limit: int) -> bool:
    if not (declared.isascii() and declared.isdigit()):
        return False  # absent or odd: the bytes are counted as they come
    digits = declared.lstrip("0") or "0"
    # Lengths first: int() of a header with thousands of digits would raise.
    return len(digits) > len(str(limit)) or int(digits) > limit


def parse_json(body: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON document in `body` (strict UTF-8); MalformedBody when it is not usable."""
    try:
        text = body.decode("utf-8")  # strict: refuses encoded surrogates, unlike json.loads
    except UnicodeDecodeError:
        raise MalformedBody("the body is not UTF-8") from None
    opened = body.count(b"{") + body.count(b"[")  # at most this deep: most bodies stop here
    if opened > max_depth and _depth(body) > max_depth:
        raise MalformedBody(f"the JSON is nested deeper than {max_depth} levels")
    try:
        document = _DECODER.decode(text)
    except MalformedBody:
        raise
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        raise MalformedBody("the body is not JSON") from None
    # Strict UTF-8 holds no surrogate: only a \u escape can make one.
    escaped = b"\\u" in body
    if escaped and any(_SURROGATE.search(text) for text in _strings(document)):
        raise MalformedBody("the JSON holds a lone surrogate, which is not Unicode text")
    return document


def _depth(body: bytes) -> int:
    """How deep the brackets outside strings nest (an upper bound for invalid JSON)."""
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _integer(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_DIGITS:
        raise MalformedBody(f"the JSON holds an integer longer than {MAX_DIGITS} digits")
    return int(digits)


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise MalformedBody("the JSON holds a number too large for a float")
    return number


def _no_constant(name: str) -> float:
    raise MalformedBody(f"the JSON holds {name}, which JSON does not allow")


# Made once: json.loads with these hooks would build a decoder for every body.
_DECODER = json.JSONDecoder(parse_int=_integer, parse_float=_finite, parse_constant=_no_constant)


def _strings(document: Any) -> Iterator[str]:
    """Every string in `document`, keys included, walked with a stack, not recursion."""
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            yield from item.keys()
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
