"""`dhis2.find`: is there a tracked entity whose attribute (settings.dhis2) equals `value`?

Returns `{"found": bool, "count": n, "ids": [...]}`. When several carry the value, the
extra ones are flagged as potential duplicates of the first. Errors take `on_error`.
"""

from __future__ import annotations

from typing import Any

from palabre.actions import Action, ActionContext
from palabre.errors import ActionError
from palabre_dhis2.client import open_client
from palabre_dhis2.context import REFUSED, UNAVAILABLE, config_of
from palabre_dhis2.duplicates import flag_extras
from palabre_dhis2.errors import Dhis2Rejected, Dhis2Unavailable
from palabre_dhis2.program import ProgramSettings
from palabre_dhis2.tracker import find_ids


async def find(arguments: dict[str, Any], context: ActionContext) -> dict[str, Any]:
    config = config_of(context)
    if not config.configured:
        raise ActionError("dhis2.find: DHIS2_URL is not set", user_message=UNAVAILABLE)
    program = ProgramSettings.from_flow_settings(context.settings)
    async with open_client(config, context.http) as client:
        try:
            ids = await find_ids(client, program, str(arguments["value"]))
        except Dhis2Unavailable as exc:
            raise ActionError(f"dhis2.find: {exc}", user_message=UNAVAILABLE) from exc
        except Dhis2Rejected as exc:
            raise ActionError(f"dhis2.find: {exc}", user_message=REFUSED) from exc
        await flag_extras(client, ids)
    return {"found": bool(ids), "count": len(ids), "ids": ids}


ACTION = Action(
    "dhis2.find",
    find,
    "Find the tracked entities whose attribute equals `value`.",
    parameters=("value",),
    required=("value",),
)
