"""The floor: the least work a hand-written UIC bot does per message, as a Starlette app.

    POST /twilio    parse the form, check X-Twilio-Signature with twilio's RequestValidator,
                    dedupe the MessageSid, load and save the session in Redis with a TTL,
                    one template render (floor_bot), TwiML written as an escaped f-string
    POST /meta      the same from a Cloud API notification: check X-Hub-Signature-256 on
                    the raw body, parse the JSON; each turn's replies go to a Redis list
                    as one item, and sender tasks post them in order to the Graph API
                    (META_API_BASE), the QR image uploaded to /media first and sent by id
                    with the text as its caption
    GET /media/ID   a stored QR PNG

On the last answer the QR PNG is drawn (floor_bot.qr_png) and kept in Redis for a day
under a random id, which its URL carries. It runs under uvicorn with the settings
`palabre serve` uses, which benchmarks/webhooks.py passes:

    REDIS_URL=... TWILIO_AUTH_TOKEN=... PUBLIC_URL=... META_APP_SECRET=... \\
    META_ACCESS_TOKEN=... META_API_BASE=... META_PHONE_NUMBER_ID=... \\
        python benchmarks/floor_app.py --port 8001 --limit-concurrency 1000 --keep-alive 5
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import sys
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import redis.asyncio as redis
from floor_bot import advance, qr_png
from floor_serving import serve, serving_parser
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

SESSION_TTL = 2 * 3600  # the UIC flow's expires_after (1 h), plus the hour Palabre adds
MEDIA_TTL = 24 * 3600
SENDERS = 8  # Graph API requests in flight at once
OUTBOX = "floor:outbox"

env = os.environ
store = redis.from_url(env["REDIS_URL"])
validator = RequestValidator(env["TWILIO_AUTH_TOKEN"])
public_url = env["PUBLIC_URL"].rstrip("/")
status_callback = public_url + "/twilio/status"
app_secret = env["META_APP_SECRET"].encode()
graph = f"{env['META_API_BASE'].rstrip('/')}/v21.0/{env['META_PHONE_NUMBER_ID']}"
bearer = {"Authorization": f"Bearer {env['META_ACCESS_TOKEN']}"}


async def converse(contact: str, message_id: str, text: str) -> tuple[list[str], str | None]:
    """The replies to one message, and the id of the QR image if any; none if seen."""
    if not await store.set(f"floor:seen:{message_id}", 1, nx=True, ex=SESSION_TTL):
        return [], None
    key = f"floor:session:{contact}"
    raw = await store.get(key)
    session, replies, code = advance(json.loads(raw) if raw else None, text)
    if session is None:
        await store.delete(key)
    else:
        await store.set(key, json.dumps(session), ex=SESSION_TTL)
    if code is None:
        return replies, None
    media_id = secrets.token_urlsafe(16)
    await store.set(f"floor:media:{media_id}", qr_png(code), ex=MEDIA_TTL)
    return replies, media_id


async def twilio(request: Request) -> Response:
    form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
    signature = request.headers.get("X-Twilio-Signature", "")
    if not validator.validate(public_url + request.url.path, form, signature):
        return PlainTextResponse("invalid signature", status_code=403)
    replies, media_id = await converse(form["From"], form["MessageSid"], form.get("Body", ""))
    media = f"{public_url}/media/{media_id}.png" if media_id else None
    return Response(twiml(replies, media), media_type="application/xml")


def twiml(replies: list[str], media: str | None) -> str:
    opening = f'<Message action="{escape(status_callback)}">'
    messages = [f"{opening}{escape(text)}</Message>" for text in replies]
    if media and messages:
        body = f"<Body>{escape(replies[-1])}</Body><Media>{escape(media)}</Media>"
        messages[-1] = f"{opening}{body}</Message>"
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{"".join(messages)}</Response>'


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


async def meta(request: Request) -> Response:
    body = await request.body()
    expected = "sha256=" + hmac.new(app_secret, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")):
        return PlainTextResponse("signature refused", status_code=403)
    document = json.loads(body)
    for entry in document.get("entry", []):
        for change in entry.get("changes", []):
            for message in change.get("value", {}).get("messages", []):
                if message.get("type") == "text":
                    await queue_replies(message["from"], message["id"], message["text"]["body"])
    return PlainTextResponse("ok")


async def queue_replies(wa_id: str, wamid: str, text: str) -> None:
    """One queued item per turn: its replies go out in order, from one sender."""
    replies, media_id = await converse(f"whatsapp:+{wa_id}", wamid, text)
    if replies:
        item = {"to": wa_id, "texts": replies, "image": media_id}
        await store.rpush(OUTBOX, json.dumps(item))


async def send_replies(http: httpx.AsyncClient) -> None:
    """One sender: take queued turns and post their replies to the Graph API."""
    while True:
        # A short block: redis-py's default 5 s socket timeout would end a longer one.
        popped = await store.blpop([OUTBOX], timeout=1)
        if popped is None:
            continue
        try:
            await send_turn(http, json.loads(popped[1]))
        except Exception as exc:  # a benchmark floor: say it, drop the item, keep sending
            print(f"floor: send failed: {type(exc).__name__}", file=sys.stderr)


async def send_turn(http: httpx.AsyncClient, item: dict[str, Any]) -> None:
    *texts, last = item["texts"]
    for text in texts:
        await post(http, item["to"], {"type": "text", "text": {"body": text}})
    if item["image"] is None:
        await post(http, item["to"], {"type": "text", "text": {"body": last}})
        return
    png = await store.get(f"floor:media:{item['image']}")
    upload = {"messaging_product": "whatsapp", "type": "image/png"}
    files = {"file": ("image.png", png, "image/png")}
    answer = await http.post(f"{graph}/media", data=upload, files=files, headers=bearer)
    image = {"id": answer.raise_for_status().json()["id"], "caption": last}
    await post(http, item["to"], {"type": "image", "image": image})


async def post(http: httpx.AsyncClient, to: str, message: dict[str, Any]) -> None:
    body = {"messaging_product": "whatsapp", "to": to, **message}
    (await http.post(f"{graph}/messages", json=body, headers=bearer)).raise_for_status()


async def media(request: Request) -> Response:
    data = await store.get(f"floor:media:{request.path_params['media_id']}")
    if data is None:
        return PlainTextResponse("not found", status_code=404)
    return Response(data, media_type="image/png")


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with httpx.AsyncClient(timeout=10.0) as http:
        senders = [asyncio.create_task(send_replies(http)) for _ in range(SENDERS)]
        yield
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
    await store.aclose()


app = Starlette(
    routes=[
        Route("/twilio", twilio, methods=["POST"]),
        Route("/meta", meta, methods=["POST"]),
        Route("/media/{media_id}.png", media),
        Route("/healthz", healthz),
    ],
    lifespan=lifespan,
)


if __name__ == "__main__":
    args = serving_parser("Serve the floor bot.").parse_args()
    serve(app, args)
