"""The events API's floor: the least a hand-written Starlette endpoint does per event.

    POST /api/v1/events   `Authorization: Bearer plb_...` → its HMAC-SHA256 digest (under
                          a key derived from PALABRE_SECRET, as Palabre keeps keys) → the
                          key's name, remembered for 10 s as Palabre does, else one
                          indexed SELECT in table api_keys (401 unless found); the JSON
                          body (400 unless an object with string event, id and to); one
                          INSERT into table events, whose primary key (key, id) catches a
                          replay (200 `duplicate`); 202 {"id", "event"}
    GET  /healthz

The database is what `palabre serve` uses without DATABASE_URL: an SQLite file in WAL
mode with synchronous=NORMAL and a busy timeout. It is reached through aiosqlite, one
connection in autocommit mode (so the INSERT is its own transaction), whose thread runs
the statements one at a time: SQLite takes one writer at a time anyway. SQLAlchemy's
async engine on aiosqlite was tried as the floor first: about six times the CPU per
request of this one, whatever its pool size (3,100 against 500 µs, one after the other
on this project's machine; 300 against 1,900 requests per second). A floor that slow
would flatter Palabre.

At start the floor makes its tables and stores the digest of BENCH_API_KEY under the
name `bench`, as `palabre apikey create` does. It runs under uvicorn with the settings
of `palabre serve`, which benchmarks/events_api.py passes:

    PALABRE_SECRET=... BENCH_API_KEY=plb_... python benchmarks/events_floor.py \\
        --port 8001 --database /tmp/floor.db --limit-concurrency 1000 --keep-alive 5
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import time
from collections.abc import AsyncIterator

import aiosqlite
from floor_serving import serve, serving_parser
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS api_keys"
    " (name TEXT PRIMARY KEY, digest TEXT NOT NULL UNIQUE, revoked_at REAL)",
    "CREATE TABLE IF NOT EXISTS events (key_name TEXT, event_id TEXT, event TEXT NOT NULL,"
    " address TEXT NOT NULL, body TEXT NOT NULL, created_at REAL NOT NULL,"
    " PRIMARY KEY (key_name, event_id))",
)
PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=5000")
FIND_KEY = "SELECT name FROM api_keys WHERE digest = ? AND revoked_at IS NULL"
ADD_EVENT = "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)"
# Palabre's derivation (palabre.api.keys), written out: the floor imports no Palabre.
hasher = hmac.new(os.environ["PALABRE_SECRET"].encode(), b"palabre api key v1", "sha256").digest()
REMEMBER_SECONDS = 10.0  # as Palabre: a key found is not looked up again for 10 s
found_keys: dict[str, tuple[str, float]] = {}  # digest: name, until


def digest_of(key: str) -> str:
    return hmac.new(hasher, key.encode(), hashlib.sha256).hexdigest()


def unauthorized(detail: str) -> Response:
    return JSONResponse({"status": 401, "detail": detail}, 401)


async def post_event(request: Request) -> Response:
    db: aiosqlite.Connection = request.app.state.db
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key:
        return unauthorized("send the key as `Authorization: Bearer plb_...`")
    found = await key_name(db, digest_of(key))
    if found is None:
        return unauthorized("this key is unknown or revoked")
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    fields = ("event", "id", "to")
    if not isinstance(body, dict) or not all(isinstance(body.get(f), str) for f in fields):
        return JSONResponse({"status": 400, "detail": "event, id and to are required"}, 400)
    row = (found, body["id"], body["event"], body["to"], json.dumps(body.get("data")))
    try:
        await db.execute(ADD_EVENT, (*row, time.time()))
    except aiosqlite.IntegrityError:
        return JSONResponse({"id": body["id"], "duplicate": True}, 200)
    return JSONResponse({"id": body["id"], "event": body["event"]}, 202)


async def key_name(db: aiosqlite.Connection, digest: str) -> str | None:
    """The name of the key in force with this digest: remembered, else read."""
    remembered = found_keys.get(digest)
    if remembered is not None and remembered[1] > time.monotonic():
        return remembered[0]
    async with db.execute(FIND_KEY, (digest,)) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return None
    found_keys[digest] = (row[0], time.monotonic() + REMEMBER_SECONDS)
    return str(row[0])


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


def app_for(path: str) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = app.state.db = await aiosqlite.connect(path, isolation_level=None)
        for statement in [*(f"PRAGMA {pragma}" for pragma in PRAGMAS), *SCHEMA]:
            await db.execute(statement)
        digest = digest_of(os.environ["BENCH_API_KEY"])
        await db.execute("INSERT OR REPLACE INTO api_keys VALUES ('bench', ?, NULL)", (digest,))
        yield
        await db.close()

    routes = [Route("/api/v1/events", post_event, methods=["POST"]), Route("/healthz", healthz)]
    return Starlette(routes=routes, lifespan=lifespan)


if __name__ == "__main__":
    parser = serving_parser("Serve the events API's floor.")
    parser.add_argument("--database", required=True, help="the SQLite file (made if new)")
    args = parser.parse_args()
    serve(app_for(args.database), args)
