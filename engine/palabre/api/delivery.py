"""An event, taken: the API checks it and queues it in one write (palabre.api.queue),
once per (API key, event id), and answers at once; a starter (palabre.api.starter) runs
the flows it triggers soon after, in order for each person.

Why not run the flows while the caller waits: a flow's first turn waits for the person's
session (a conversation in progress may hold it for seconds, in a DHIS-2 call), renders
texts and queues messages; the caller's system should not wait on any of that, and a
burst of events (a queue opening in the morning) is taken as fast as it comes and
started as fast as the workers go. RapidPro's flow starts and Twilio's messages answer
the same way: accepted now, their outcome read later.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from palabre.api.problems import Problem
from palabre.api.queue import EventQueue, Taken
from palabre.api.requests import EventRequest
from palabre.errors import StoreError
from palabre.runtime.engine import Engine

log = logging.getLogger("palabre.api")


class EventDesk:
    """Takes checked event requests for the flows they trigger, once each."""

    def __init__(self, engine: Engine) -> None:
        if engine.stores is None:
            raise ValueError("the events API needs the durable stores")
        self.engine = engine
        self.queue: EventQueue = engine.stores.events

    def flows_for(self, event: str) -> list[str]:
        """The flows `event` starts, by id."""
        return self.engine.flows_for_event(event)

    async def take(self, key_name: str, request: EventRequest, wait: float = 0) -> dict[str, Any]:
        """Queue `request` (or find it queued before under its id): the answer. With
        `wait` (seconds), the answer also tells what became of it, once its flows ran
        (with their messages' ids) or the wait ran out (`Prefer: wait`)."""
        taken = Taken(
            key_name=key_name,
            event_id=request.id,
            digest=request.digest,
            event=request.event,
            contact_key=self.engine.contact_key(request.to),
            request=request.canonical,
            expires_at=self.queue.clock() + request.ttl if request.ttl else None,
        )
        found = await self.queue.take(taken)
        if found is not None and found != request.digest:
            raise Problem(
                422,
                "id-reused",
                "This id was used for another event",
                "an event id names one event: send this one under a new id",
            )
        if not wait:
            return answer(request)
        try:
            became = await self.queue.settled(key_name, request.id, wait)
        except StoreError:  # taken all the same: what became of it is read later
            log.warning("the database failed while an event's answer waited for its flows")
            return answer(request)
        return answer(request) | (became.document() if became else {})


def answer(request: EventRequest) -> dict[str, Any]:
    """The API's answer to an event taken: the same for every copy of it."""
    where = "/api/v1/events/" + quote(request.id, safe="")
    return {"id": request.id, "event": request.event, "status_url": where}
