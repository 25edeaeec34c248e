"""An event, delivered: each flow it triggers is started for the person, once per
(API key, event id), and the answer (the messages' ids) is kept and given again.

The flows start as `palabre start` starts them (Engine.start): their messages become
outbox rows of kind `event`, sent by the workers, after replies and before broadcasts,
under the consent the flow's `triggers: {purpose: ...}` names (`service` by default; a
`broadcast` one reaches no one who said STOP); `ttl` makes them `expired` rather than
late. Each start's idempotency key hashes the key's name, the event id and the flow, so
that two copies of a request at once start each flow once, and the stored answer settles
who answers first.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from functools import cache
from typing import Any

from sqlalchemy import bindparam, delete, select

from palabre.addresses import read_address
from palabre.api.problems import FieldError, Problem, invalid
from palabre.api.requests import EventRequest
from palabre.db.batches import group_commit
from palabre.db.database import Database
from palabre.db.driver import DriverStatement
from palabre.db.inserts import insert_new
from palabre.db.schema import event_requests
from palabre.outbox.rows import Origin
from palabre.runtime.engine import Engine
from palabre.runtime.entrances import Contact
from palabre.starts import default_transport


def start_key(key_name: str, event_id: str, flow_id: str) -> str:
    """The idempotency key of one flow started by one event of one API key (hashed: no
    choice of names and ids can make two of them alike)."""
    what = json.dumps([key_name, event_id, flow_id], ensure_ascii=False)
    return "event:" + hashlib.sha256(what.encode("utf-8", "surrogatepass")).hexdigest()[:32]


async def forget_events(database: Database, before: float) -> int:
    """Delete the answers kept for events received before `before` (an id sent again
    after that is a new event); returns how many."""
    old = delete(event_requests).where(event_requests.c.created_at < before)
    async with database.write() as conn:
        return (await conn.execute(old)).rowcount


class EventDesk:
    """Turns checked event requests into started flows, once each."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        if engine.stores is None:
            raise ValueError("the events API needs the durable stores")
        self.engine, self.database, self.clock = engine, engine.stores.database, clock

    def flows_for(self, event: str) -> list[str]:
        """The flows `event` starts, by id."""
        return sorted(flow.id for flow in self.engine.flows.values() if event in flow.events)

    async def deliver(self, key_name: str, request: EventRequest) -> dict[str, Any]:
        """Start the flows `request` triggers (or give the first answer again)."""
        before = await self._answered(key_name, request)
        if before is not None:
            return before
        messages: list[str] = []
        for flow_id in self.flows_for(request.event):
            messages += await self._start(key_name, request, flow_id)
        answer = {"id": request.id, "event": request.event, "messages": messages}
        return await self._keep(key_name, request, answer)

    async def _start(self, key_name: str, request: EventRequest, flow_id: str) -> list[str]:
        address = read_address(request.to)
        transport = default_transport(address, self.engine.settings)
        contact = Contact(request.to, transport, request.channel, request.lang)
        expires = self.clock() + request.ttl if request.ttl else None
        event = {"name": request.event, "id": request.id, "data": request.data}
        reply = await self.engine.start(
            contact,
            flow_id,
            key=start_key(key_name, request.id, flow_id),
            origin=Origin("event", self.engine.flows[flow_id].event_purpose, expires_at=expires),
            variables={"event": event},
        )
        if any(e.name == "turn_failed" for e in reply.events):  # nothing was sent
            raise invalid(
                [
                    FieldError(
                        "#/data",
                        f"the flow '{flow_id}' failed on this event's data: "
                        "a field its texts use is missing or too long (see the log)",
                    )
                ]
            )
        return reply.uids

    async def _answered(self, key_name: str, request: EventRequest) -> dict[str, Any] | None:
        """The answer kept for (key, id); a Problem when that id named another event."""
        found = await self.database.run(_ANSWER.first, {"b_key": key_name, "b_id": request.id})
        if found is None:
            return None
        if found[0] != request.digest:
            raise Problem(
                422,
                "id-reused",
                "This id was used for another event",
                "an event id names one event: send this one under a new id",
            )
        answer: dict[str, Any] = json.loads(found[1])
        return answer

    async def _keep(
        self, key_name: str, request: EventRequest, answer: dict[str, Any]
    ) -> dict[str, Any]:
        """Store the answer; when a copy of the request stored one first, that one."""
        row = {
            "key_name": key_name,
            "event_id": request.id,
            "digest": request.digest,
            "answer": json.dumps(answer),
            "created_at": self.clock(),
        }
        statement = _keep_statement(self.database.dialect)
        # In the group commit the outbox shares: the writes of events at once, one trip.
        added = await group_commit(self.database).run(lambda conn: statement.first(conn, row))
        if added is not None:
            return answer
        first = await self._answered(key_name, request)
        return first if first is not None else answer


# Every event runs these: built once, on the driver's cursor (palabre.db.driver).
_ANSWER = DriverStatement(
    select(event_requests.c.digest, event_requests.c.answer).where(
        event_requests.c.key_name == bindparam("b_key"),
        event_requests.c.event_id == bindparam("b_id"),
    )
)


@cache
def _keep_statement(dialect: str) -> DriverStatement:
    return DriverStatement(insert_new(dialect, event_requests))
