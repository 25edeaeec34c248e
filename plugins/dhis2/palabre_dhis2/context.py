"""What a DHIS-2 action takes from its `ActionContext`: settings, HTTP client and queue.

The engine hands actions the flow's `settings:` only, so the process settings come from
`services["settings"]` when the engine provides it, else from the environment through
`Settings.from_env()` (the one configuration door). The queue lives in
`services["data_dir"]`, else in the settings' data dir.
"""

from __future__ import annotations

from palabre.actions import ActionContext
from palabre.config import Settings
from palabre.i18n.messages import N_
from palabre_dhis2.config import Dhis2Config
from palabre_dhis2.queue import RegistrationQueue, queue_for

# English source texts shown to the contact, translated through the catalogs.
UNAVAILABLE = N_("The health registry cannot be reached right now.")
REFUSED = N_("The health registry could not record this request.")


def settings_of(context: ActionContext) -> Settings:
    settings = context.services.get("settings")
    return settings if isinstance(settings, Settings) else Settings.from_env()


def config_of(context: ActionContext) -> Dhis2Config:
    return Dhis2Config.from_settings(settings_of(context))


def queue_of(context: ActionContext) -> RegistrationQueue:
    queue = context.services.get("dhis2_queue")
    if isinstance(queue, RegistrationQueue):
        return queue
    return queue_for(context.services.get("data_dir") or settings_of(context).data_dir)
