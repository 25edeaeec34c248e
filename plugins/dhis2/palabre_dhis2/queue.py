"""Registrations waiting for DHIS-2, kept in the durable task queue until they are imported.

One task per registration (kind `dhis2.register`), keyed by its tracked entity UID: the
code (the value the flow chose to register), the UIDs the import needs, and when to try
next. No contact, no phone number. The action and the worker share the queue through
`Stores.tasks`, on the one database every worker uses.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from palabre.stores.tasks import Task, TaskQueue
from palabre_dhis2.program import ProgramSettings
from palabre_dhis2.registration import Registration

log = logging.getLogger("palabre.dhis2")

KIND = "dhis2.register"


@dataclass(frozen=True)
class Queued:
    """A queued registration and how many attempts have failed so far."""

    registration: Registration
    attempts: int


class RegistrationQueue:
    """DHIS-2 registrations in the task queue; every write is committed before it returns."""

    def __init__(self, tasks: TaskQueue) -> None:
        self._tasks = tasks

    async def add(self, registration: Registration) -> None:
        """Queue `registration`, due now (adding the same UIDs again changes nothing)."""
        uid = registration.tracked_entity
        await self._tasks.add(KIND, _task_id(uid), _payload(registration))
        log.info("registration queued", extra={"id": uid})

    async def due(self, limit: int = 20) -> list[Queued]:
        """The registrations whose next attempt is due, oldest first."""
        return [_queued(task) for task in await self._tasks.due(KIND, limit)]

    async def done(self, tracked_entity: str) -> None:
        """Forget a registration DHIS-2 now holds, code and all."""
        await self._tasks.done(_task_id(tracked_entity))

    async def postpone(self, tracked_entity: str, delay: float, error: str) -> None:
        """Try again in `delay` seconds; `error` names the failure (no personal data)."""
        await self._tasks.postpone(_task_id(tracked_entity), delay, error)

    async def count(self) -> int:
        """How many registrations wait, due or not."""
        return await self._tasks.count(KIND)


def _task_id(tracked_entity: str) -> str:
    return f"{KIND}:{tracked_entity}"


def _payload(registration: Registration) -> dict[str, Any]:
    return {
        "value": registration.value,
        "program": dataclasses.asdict(registration.program),
        "tracked_entity": registration.tracked_entity,
        "enrollment": registration.enrollment,
        "enrolled_at": registration.enrolled_at,
    }


def _queued(task: Task) -> Queued:
    data = task.payload
    registration = Registration(
        data["value"],
        ProgramSettings(**data["program"]),
        data["tracked_entity"],
        data["enrollment"],
        data["enrolled_at"],
    )
    return Queued(registration, task.attempts)
