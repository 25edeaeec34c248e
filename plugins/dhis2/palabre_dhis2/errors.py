"""What can go wrong when talking to DHIS-2.

    palabre.errors.PalabreError
    └── Dhis2Error              a DHIS-2 call failed
        ├── Dhis2Unavailable    timeout, connection refused or 5xx after every retry:
        │                       try again later (a registration is queued)
        └── Dhis2Rejected       a 4xx answer: the request or the configuration is wrong,
                                and retrying the same request will not help

Messages name the endpoint and the HTTP status, never a code, a name or a phone number.
Actions turn these into `palabre.errors.ActionError` with a short `user_message`.
"""

from __future__ import annotations

from typing import Any

from palabre.errors import PalabreError


class Dhis2Error(PalabreError):
    """A DHIS-2 call failed."""


class Dhis2Unavailable(Dhis2Error):
    """DHIS-2 could not be reached or kept failing (5xx): the caller may try again later."""


class Dhis2Rejected(Dhis2Error):
    """DHIS-2 answered 4xx. `status` is the HTTP status and `body` the parsed JSON, if any."""

    def __init__(self, message: str, *, status: int, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
