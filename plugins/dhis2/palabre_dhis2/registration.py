"""One registration: a code to record in DHIS-2, with the UIDs the client chose for it.

The tracked entity and enrollment UIDs are generated once, before the first attempt, and
kept with the queued registration: a retried import then creates nothing twice (DHIS-2
answers E1002 "already exists" for the tracked entity a lost answer had created). When the
turn has an idempotency key, the UIDs are derived from it, so a turn retried after a
crash makes the same UIDs and recognises the tracked entity it created itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from palabre_dhis2.program import ProgramSettings
from palabre_dhis2.uid import derived_uid, generate_uid


@dataclass(frozen=True)
class Registration:
    """What the importer needs: the code (the attribute value) and the UIDs, no contact."""

    value: str
    program: ProgramSettings
    tracked_entity: str
    enrollment: str
    enrolled_at: str

    @classmethod
    def new(
        cls,
        value: str,
        program: ProgramSettings,
        *,
        now: float | None = None,
        seed: str | None = None,
    ) -> Registration:
        """A registration enrolled today (the process's local date), with fresh UIDs, or
        UIDs derived from `seed` (a turn's idempotency key)."""
        day = time.strftime("%Y-%m-%d", time.localtime(now))
        if seed is None:
            entity, enrollment = generate_uid(), generate_uid()
        else:
            entity, enrollment = derived_uid(f"{seed}:te"), derived_uid(f"{seed}:en")
        return cls(value, program, entity, enrollment, f"{day}T00:00:00.000")

    def payload(self) -> dict[str, Any]:
        """The nested `POST /api/tracker` body: the tracked entity, enrolled in the program."""
        program = self.program
        return {
            "trackedEntities": [
                {
                    "trackedEntity": self.tracked_entity,
                    "trackedEntityType": program.tracked_entity_type,
                    "orgUnit": program.org_unit,
                    "attributes": [{"attribute": program.attribute, "value": self.value}],
                    "enrollments": [
                        {
                            "enrollment": self.enrollment,
                            "program": program.program,
                            "orgUnit": program.org_unit,
                            "enrolledAt": self.enrolled_at,
                            "occurredAt": self.enrolled_at,
                            "status": "ACTIVE",
                        }
                    ],
                }
            ]
        }
