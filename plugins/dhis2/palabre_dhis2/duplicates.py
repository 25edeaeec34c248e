"""Flag every extra tracked entity that carries a code as a duplicate of the first one."""

from __future__ import annotations

import logging

from palabre_dhis2.client import Dhis2Client
from palabre_dhis2.errors import Dhis2Error
from palabre_dhis2.tracker import flag_duplicate

log = logging.getLogger("palabre.dhis2")


async def flag_extras(client: Dhis2Client, ids: list[str]) -> None:
    """Flag ids[1:] against ids[0]; a failure is logged, never raised (a lookup still answers)."""
    for duplicate in ids[1:]:
        try:
            await flag_duplicate(client, ids[0], duplicate)
        except Dhis2Error as exc:
            log.warning(
                "could not flag a potential duplicate: %s",
                type(exc).__name__,
                extra={"original": ids[0], "duplicate": duplicate},
            )
