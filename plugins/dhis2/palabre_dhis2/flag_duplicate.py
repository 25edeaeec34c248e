"""`dhis2.flag_duplicate`: mark two tracked entities as a potential duplicate.

Arguments `original` and `duplicate` are tracked entity UIDs. Returns
`{"status": "flagged"}`, or `{"status": "already_flagged"}` when DHIS-2 had the pair.
"""

from __future__ import annotations

from typing import Any

from palabre.actions import Action, ActionContext
from palabre.errors import ActionError
from palabre_dhis2.client import open_client
from palabre_dhis2.context import REFUSED, UNAVAILABLE, config_of
from palabre_dhis2.errors import Dhis2Rejected, Dhis2Unavailable
from palabre_dhis2.tracker import flag_duplicate
from palabre_dhis2.uid import is_uid


async def flag(arguments: dict[str, Any], context: ActionContext) -> dict[str, str]:
    original, duplicate = str(arguments["original"]), str(arguments["duplicate"])
    if not (is_uid(original) and is_uid(duplicate)) or original == duplicate:
        raise ActionError("dhis2.flag_duplicate needs two different tracked entity UIDs")
    config = config_of(context)
    if not config.configured:
        raise ActionError("dhis2.flag_duplicate: DHIS2_URL is not set", user_message=UNAVAILABLE)
    async with open_client(config, context.http) as client:
        try:
            new = await flag_duplicate(client, original, duplicate)
        except Dhis2Unavailable as exc:
            raise ActionError(f"dhis2.flag_duplicate: {exc}", user_message=UNAVAILABLE) from exc
        except Dhis2Rejected as exc:
            raise ActionError(f"dhis2.flag_duplicate: {exc}", user_message=REFUSED) from exc
    return {"status": "flagged" if new else "already_flagged"}


ACTION = Action(
    "dhis2.flag_duplicate",
    flag,
    "Flag two tracked entities as a potential duplicate.",
    parameters=("original", "duplicate"),
    required=("original", "duplicate"),
)
