"""A fake Graph API on loopback that answers like Meta and costs next to nothing.

    python benchmarks/fake_graph.py --port 8002

    POST /<version>/<phone id>/messages   {"messaging_product": "whatsapp", "contacts": [...],
                                          "messages": [{"id": "wamid...."}]}
    POST /<version>/<phone id>/media      {"id": "<media id>"}
    GET  /stats                           counts so far, and the last few /messages bodies

It is a bare asyncio HTTP/1.1 server (keep-alive, Content-Length or chunked bodies),
not an ASGI app: on a 2-core machine its CPU comes out of what the servers under test
get, so it must be small. It sends nothing anywhere and checks no token.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import deque

counts = {"messages": 0, "media": 0, "other": 0}
last_bodies: deque[str] = deque(maxlen=20)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            method, path, headers = parse_head(head)
            body = await read_body(reader, headers)
            writer.write(answer(method, path, body))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, path, _ = request_line.split(" ", 2)
    headers = {}
    for line in lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return method, path, headers


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            chunks.append(await reader.readexactly(size + 2))
        await reader.readuntil(b"\r\n")
        return b"".join(chunk[:-2] for chunk in chunks)
    return await reader.readexactly(int(headers.get("content-length", "0")))


def answer(method: str, path: str, body: bytes) -> bytes:
    if method == "POST" and path.endswith("/messages"):
        counts["messages"] += 1
        last_bodies.append(body.decode(errors="replace"))
        wamid = f"wamid.fake{counts['messages']:012d}"
        reply = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": "bench", "wa_id": "bench"}],
            "messages": [{"id": wamid}],
        }
    elif method == "POST" and path.endswith("/media"):
        counts["media"] += 1
        reply = {"id": f"{counts['media']:015d}"}
    elif path == "/stats":
        reply = {**counts, "last": list(last_bodies)}
    else:
        counts["other"] += 1
        reply = {"error": {"message": "unknown path", "type": "OAuthException", "code": 100}}
    data = json.dumps(reply).encode()
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
