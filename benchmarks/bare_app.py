"""The baseline: the least work any Twilio bot must do per message, and nothing more.

Parse the form, check the signature with twilio's RequestValidator, dedupe the
MessageSid, load and save a session in Redis with a TTL, render one template, and
answer TwiML. The engine is measured against this floor in the same run.

Run: REDIS_URL=... TWILIO_AUTH_TOKEN=... PUBLIC_URL=... uvicorn benchmarks.bare_app:app
"""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qsl

import redis.asyncio as redis
from jinja2.sandbox import ImmutableSandboxedEnvironment
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

TTL = 72 * 3600
store = redis.from_url(os.environ["REDIS_URL"])
validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
public_url = os.environ["PUBLIC_URL"].rstrip("/")
template = ImmutableSandboxedEnvironment().from_string("Question {{ step }}: {{ text }}")


async def webhook(request: Request) -> Response:
    form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
    signature = request.headers.get("X-Twilio-Signature", "")
    if not validator.validate(public_url + request.url.path, form, signature):
        return Response(status_code=403)
    if not await store.set(f"bare:seen:{form['MessageSid']}", 1, nx=True, ex=TTL):
        return Response(str(MessagingResponse()), media_type="application/xml")
    key = f"bare:session:{form['From']}"
    session = json.loads(await store.get(key) or '{"step": 0}')
    session["step"] += 1
    await store.set(key, json.dumps(session), ex=TTL)
    reply = MessagingResponse()
    reply.message(template.render(step=session["step"], text="answer please"))
    return Response(str(reply), media_type="application/xml")


app = Starlette(routes=[Route("/twilio", webhook, methods=["POST"])])
