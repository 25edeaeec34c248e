"""Before measuring: both servers do the whole job; and what an idle session weighs.

`check_twilio` and `check_meta` run one UIC conversation through a server and refuse to
go on unless it ends with the code and a QR image (served as a PNG, or sent to the
Graph API). `session_bytes` is Redis's MEMORY USAGE of a session after the first answer.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import httpx
import redis
from requests_file import Message, answer, meta_post, twilio_post
from servers import PUBLIC_URL, SECRETS, Server

CODE = "MBEIBR7DA1"


def conversation(contact: int, steps: int = 6) -> list[Message]:
    return [Message(contact, step, answer(contact, step, False)) for step in range(steps)]


def check_twilio(server: Server, contact: int) -> None:
    """One conversation on /twilio; SystemExit unless it ends with the code and its image."""
    token = SECRETS["TWILIO_AUTH_TOKEN"]
    with httpx.Client(base_url=server.url) as client:
        for message in conversation(contact):
            path, headers, body = twilio_post(message, token, PUBLIC_URL)
            reply = client.post(path, content=body, headers=headers)
            reply.raise_for_status()
        twiml = reply.text
        if CODE not in twiml or "<Media>" not in twiml:
            raise SystemExit(f"{server.url}: the last reply has no code or image:\n{twiml}")
        image = twiml.split("<Media>")[1].split("</Media>")[0].replace("&amp;", "&")
        png = client.get(urlsplit(image).path)
        if png.status_code != 200 or not png.content.startswith(b"\x89PNG"):
            raise SystemExit(f"{server.url}: the QR image is not served ({png.status_code})")


def check_meta(server: Server, graph: Server, contact: int) -> None:
    """One conversation on /meta; SystemExit unless the Graph API gets the code's image."""
    with httpx.Client(base_url=server.url) as client:
        for message in conversation(contact):
            path, headers, body = meta_post(message, SECRETS["META_APP_SECRET"])
            client.post(path, content=body, headers=headers).raise_for_status()
    wa_id = conversation(contact)[0].phone[1:]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        sent = [json.loads(body) for body in httpx.get(graph.url + "/stats").json()["last"]]
        mine = [body for body in sent if body.get("to") in (wa_id, f"+{wa_id}")]
        if any(body.get("type") == "image" and CODE in json.dumps(body) for body in mine):
            return
        time.sleep(0.2)
    raise SystemExit(f"{server.url}: no image with the code reached the Graph API")


def session_bytes(redis_url: str, server: Server, contact: int, engine: bool) -> dict[str, int]:
    """MEMORY USAGE of the contact's session after the first answer (two messages), and of
    the ids kept to dedupe them."""
    token = SECRETS["TWILIO_AUTH_TOKEN"]
    messages = conversation(contact, steps=2)
    for message in messages:
        path, headers, body = twilio_post(message, token, PUBLIC_URL)
        httpx.post(server.url + path, content=body, headers=headers).raise_for_status()
    address = f"whatsapp:{messages[0].phone}"
    client = redis.Redis.from_url(redis_url)
    try:
        if engine:
            session, seen = engine_keys(address, [m.message_id("SM") for m in messages])
        else:
            session = f"floor:session:{address}"
            seen = [f"floor:seen:{m.message_id('SM')}" for m in messages]
        usage = client.memory_usage(session, samples=0)
        ids = [client.memory_usage(key, samples=0) or 0 for key in seen]
    finally:
        client.close()
    return {"session": int(usage or 0), "seen_ids": int(sum(ids))}


def engine_keys(address: str, message_ids: list[str]) -> tuple[str, list[str]]:
    """Palabre's Redis keys for a contact's session and seen message ids (stores.redis)."""
    from palabre.contacts import contact_hasher, contact_key
    from palabre.stores.base import message_key

    key = contact_key(contact_hasher(SECRETS["PALABRE_SECRET"].encode()), address)
    seen = [f"palabre:seen:{message_key(message_id)}" for message_id in message_ids]
    return f"palabre:session:{key}", seen
