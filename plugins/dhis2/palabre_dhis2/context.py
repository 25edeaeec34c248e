"""What a DHIS-2 action takes from its `ActionContext`: settings, HTTP client and queue.

The process settings are the engine's (`context.settings_env`), else read from the
environment through `Settings.from_env()` (the one configuration door). The queue lives
in the durable stores' task queue (`context.stores.tasks`).
"""

from __future__ import annotations

from palabre.actions import ActionContext
from palabre.config import Settings
from palabre.errors import StoreError
from palabre.i18n.messages import N_
from palabre_dhis2.config import Dhis2Config
from palabre_dhis2.queue import RegistrationQueue

# English source texts shown to the contact, translated through the catalogs.
UNAVAILABLE = N_("The health registry cannot be reached right now.")
REFUSED = N_("The health registry could not record this request.")


def settings_of(context: ActionContext) -> Settings:
    """The process settings: the engine's, else from the environment."""
    return context.settings_env or Settings.from_env()


def config_of(context: ActionContext) -> Dhis2Config:
    return Dhis2Config.from_settings(settings_of(context))


def queue_of(context: ActionContext) -> RegistrationQueue:
    """The registration queue on the engine's stores (StoreError when it has none)."""
    if context.stores is None:
        raise StoreError("the engine has no durable stores to queue the registration in")
    return RegistrationQueue(context.stores.tasks)
