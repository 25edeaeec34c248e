"""`dhis2.register`: record `value` (the code) in DHIS-2, enrolled in the flow's program.

    {"status": "skipped"}             DHIS2_URL is not set: the flow goes on without DHIS-2
    {"status": "exists", "id": uid}  a tracked entity already carries the code
    {"status": "created", "id": uid} a tracked entity was created and enrolled
    {"status": "queued"}             DHIS-2 is down or too slow: kept durably, the worker
                                     completes it

The whole registration has `BUDGET_SECONDS`; past it, it is queued, so the contact's turn
ends inside the webhook's time budget and before the engine's deadline for the action.
A 4xx (bad credentials, bad UIDs) raises ActionError and takes the step's `on_error`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from palabre.actions import DEFAULT_DEADLINE_SECONDS, Action, ActionContext
from palabre.errors import ActionError, StoreError
from palabre_dhis2.client import Dhis2Client, open_client
from palabre_dhis2.context import REFUSED, UNAVAILABLE, config_of, queue_of
from palabre_dhis2.duplicates import flag_extras
from palabre_dhis2.errors import Dhis2Error, Dhis2Rejected, Dhis2Unavailable
from palabre_dhis2.program import ProgramSettings
from palabre_dhis2.registration import Registration
from palabre_dhis2.tracker import find_ids, submit

# Leaves time to queue the registration before the engine stops the action.
BUDGET_SECONDS = DEFAULT_DEADLINE_SECONDS - 2.0


async def register(arguments: dict[str, Any], context: ActionContext) -> dict[str, Any]:
    config = config_of(context)
    if not config.configured:
        return {"status": "skipped"}
    program = ProgramSettings.from_flow_settings(context.settings)
    registration = Registration.new(str(arguments["value"]), program, seed=context.idempotency_key)
    async with open_client(config, context.http) as client:
        try:
            async with asyncio.timeout(BUDGET_SECONDS):
                return await register_with(client, registration)
        except (Dhis2Unavailable, TimeoutError):
            return await _queue(context, registration)
        except Dhis2Rejected as exc:
            raise ActionError(f"dhis2.register: {exc}", user_message=REFUSED) from exc


async def register_with(client: Dhis2Client, registration: Registration) -> dict[str, Any]:
    """Find first; create only when nobody carries the code yet.

    A tracked entity with this registration's own UID was created by an earlier attempt of
    the same turn (a crash or a stall before the answer was saved): it counts as created.
    """
    ids = await find_ids(client, registration.program, registration.value)
    if registration.tracked_entity in ids:
        return {"status": "created", "id": registration.tracked_entity}
    if ids:
        await flag_extras(client, ids)
        return {"status": "exists", "id": ids[0]}
    if await submit(client, registration) == "created":
        return {"status": "created", "id": registration.tracked_entity}
    return {"status": "exists", "id": await _existing_id(client, registration)}


async def _existing_id(client: Dhis2Client, registration: Registration) -> str | None:
    # Someone registered the code between our lookup and our import (E1064).
    try:
        ids = await find_ids(client, registration.program, registration.value)
    except Dhis2Error:
        return None
    return ids[0] if ids else None


async def _queue(context: ActionContext, registration: Registration) -> dict[str, Any]:
    try:
        await queue_of(context).add(registration)
    except StoreError as exc:
        raise ActionError(
            f"dhis2.register: DHIS-2 is down and the queue failed: {exc}", user_message=UNAVAILABLE
        ) from exc
    return {"status": "queued"}


ACTION = Action(
    "dhis2.register",
    register,
    "Register `value` in DHIS-2 (or queue it while DHIS-2 is down).",
    parameters=("value",),
    required=("value",),
)
