"""What a Graph API `error.code` means for a message, and what to do about it.

Meta answers many failures with a JSON `error` object whose `code` says more than the HTTP
status, so sending is judged by the code. The same codes arrive later in `failed` status
webhooks (`statuses[].errors[].code`), 131047 and 131026 most often. Rate limits
(130429 throughput, 131056 pair rate, 80007 account, 4 app) are `throttled`: the outbox
tries again later without using up an attempt.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Handling:
    """How one error code is handled: retry later or not, what to tell, whom to alert."""

    retryable: bool
    detail: str
    alert_operator: bool = False
    throttled: bool = False  # we send too fast: later, and no attempt is used up


CODES: dict[int, Handling] = {
    4: Handling(True, "the app hit its Graph API call limit: retry later", throttled=True),
    80007: Handling(
        True, "the WhatsApp Business Account hit its rate limit: retry later", throttled=True
    ),
    130429: Handling(
        True, "throughput limit of the phone number reached: retry later", throttled=True
    ),
    131048: Handling(True, "spam rate limit: the number sends too much, retry later"),
    131056: Handling(
        True,
        "pair rate limit: too many messages to this contact in a short time, retry later",
        throttled=True,
    ),
    131047: Handling(
        False,
        "more than 24 hours since the contact's last message: the window is closed, "
        "send an approved template instead",
    ),
    131026: Handling(
        False, "undeliverable: the contact may not use WhatsApp or may run an old version"
    ),
    190: Handling(
        False,
        "the access token is invalid or expired: renew META_ACCESS_TOKEN "
        "(a System User token does not expire)",
        alert_operator=True,
    ),
}


def handling_for(code: int | None, kind: str = "") -> Handling:
    """The handling of `code`; an unknown code fails for good, naming the code."""
    if code is not None and code in CODES:
        return CODES[code]
    label = f" ({kind})" if kind else ""
    return Handling(False, f"Graph API error {code}{label}: see Meta's error code reference")
