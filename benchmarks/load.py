"""A load generator for Twilio webhooks: pre-signed UIC conversations, one process.

Each contact sends the 6 messages of a UIC conversation one after the other (a real
person waits for the answer); `--concurrency` contacts talk at once. Prints JSON:
requests, seconds, throughput (requests/s), p50 and p99 latency (ms), errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import httpx
from twilio.request_validator import RequestValidator

UIC = ["Bonjour", "Mbengue", "Ibrahima", "1997", "DA", "1"]


def signed_conversations(contacts: int, token: str, url: str, tag: str) -> list[list[dict]]:
    """Every request, signed in advance so signing does not count as server time."""
    validator = RequestValidator(token)
    conversations = []
    for c in range(contacts):
        phone = f"+2438{c:08d}"
        requests = []
        for i, body in enumerate(UIC):
            form = {
                "MessageSid": f"SM{tag}{c:08d}{i}",
                "AccountSid": "AC" + "0" * 32,
                "From": f"whatsapp:{phone}",
                "To": "whatsapp:+14155238886",
                "Body": body,
                "NumMedia": "0",
            }
            headers = {"X-Twilio-Signature": validator.compute_signature(url, form)}
            requests.append({"data": form, "headers": headers})
        conversations.append(requests)
    return conversations


async def talk(
    client: httpx.AsyncClient,
    url: str,
    conversation: list[dict],
    latencies: list[float],
    errors: list[int],
) -> None:
    for request in conversation:
        start = time.perf_counter()
        response = await client.post(url, data=request["data"], headers=request["headers"])
        latencies.append(time.perf_counter() - start)
        if response.status_code != 200:
            errors.append(response.status_code)


async def run(target: str, conversations: list[list[dict]], concurrency: int) -> dict:
    latencies: list[float] = []
    errors: list[int] = []
    queue = list(reversed(conversations))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            while queue:
                await talk(client, target, queue.pop(), latencies, errors)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - start
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "seconds": round(seconds, 3),
        "throughput": round(len(latencies) / seconds, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 2),
        "errors": len(errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True, help="URL to POST to")
    parser.add_argument("--signed-url", required=True, help="the public URL the signature covers")
    parser.add_argument("--token", required=True)
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--tag", default="a")
    args = parser.parse_args()
    conversations = signed_conversations(args.contacts, args.token, args.signed_url, args.tag)
    print(json.dumps(asyncio.run(run(args.target, conversations, args.concurrency))))


if __name__ == "__main__":
    main()
