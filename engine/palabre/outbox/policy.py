"""What the worker does with a provider's answer: the retry policy and its settings.

    PALABRE_OUTBOX_ATTEMPTS  attempts of a message whose failures are retryable (3)
    PALABRE_OUTBOX_BACKOFF   seconds before the 2nd attempt (5); x4 for each one after,
                             with +-20 % jitter; also the pause after the provider
                             throttled us (never an attempt used up)
    PALABRE_OUTBOX_LEASE     seconds a worker holds a claimed row (60): longer than any
                             send (the HTTP timeout is 10 s); a worker that dies lets it lapse.
                             The event starter holds its claimed events as long

A `Delivery` becomes one `Outcome`: sent (with the provider id); throttled (queued again
later, same attempts); unconfirmed (the request may have gone out: final, never resent
blindly); retryable (queued again after a backoff, until the attempts are used up:
failed); anything else failed for good, with the provider's code and a short reason.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from palabre.config import Settings
from palabre.config_checks import finite_number, shown, whole_number
from palabre.outbox.statuses import FAILED, QUEUED, SENT, UNCONFIRMED
from palabre.transports import Delivery

ATTEMPTS, BACKOFF, LEASE = (
    "PALABRE_OUTBOX_ATTEMPTS",
    "PALABRE_OUTBOX_BACKOFF",
    "PALABRE_OUTBOX_LEASE",
)
GROWTH = 4.0  # each retry waits four times the one before (5 s, 20 s...), as mailroom spaces them
JITTER = 0.2
MAX_REASON = 200  # a reason is a short line from the transport: never a body or a number


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, how long between them, how long a claim lasts."""

    attempts: int = 3
    backoff: float = 5.0
    lease: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The policy the settings give (malformed values keep the defaults: see problems)."""
        default = cls()
        attempts = whole_number(settings.option(ATTEMPTS) or "")
        backoff = finite_number(settings.option(BACKOFF) or "")
        lease = finite_number(settings.option(LEASE) or "")
        return cls(
            attempts if attempts else default.attempts,
            backoff if backoff and backoff >= 0.001 else default.backoff,
            lease if lease and lease >= 1 else default.lease,
        )

    def retry_delay(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failed attempt."""
        return _jittered(self.backoff * GROWTH ** max(0, failures - 1))

    def throttle_delay(self) -> float:
        """Seconds to wait after the provider said we send too fast."""
        return _jittered(self.backoff)


@dataclass(frozen=True)
class Outcome:
    """What to write on a row after one send."""

    status: str
    attempts: int  # after this send
    next_attempt_at: float | None = None
    provider_id: str | None = None
    error_code: str | None = None
    reason: str | None = None
    gave_up: bool = False  # failed on retryable errors, out of attempts: may be tried again


def outcome_of(delivery: Delivery, attempts: int, policy: RetryPolicy, now: float) -> Outcome:
    """The outcome of `delivery` for a row that had `attempts` failed attempts before."""
    if delivery.provider_id:
        return Outcome(SENT, attempts, provider_id=delivery.provider_id)
    code, reason = delivery.error_code, (delivery.detail or "")[:MAX_REASON] or None
    if delivery.unconfirmed:
        return Outcome(UNCONFIRMED, attempts + 1, error_code=code, reason=reason)
    if delivery.throttled:
        return Outcome(QUEUED, attempts, now + policy.throttle_delay(), None, code, reason)
    failures = attempts + 1
    if delivery.retryable and failures < policy.attempts:
        later = now + policy.retry_delay(failures)
        return Outcome(QUEUED, failures, later, None, code, reason)
    return Outcome(FAILED, failures, error_code=code, reason=reason, gave_up=delivery.retryable)


def problems(settings: Settings) -> list[str]:
    """One line per malformed outbox setting."""
    found = []
    raw = settings.option(ATTEMPTS)
    if raw and not whole_number(raw):
        found.append(f"{ATTEMPTS}={shown(raw)} must be a whole number of attempts, such as 3")
    for name, least in ((BACKOFF, 0.001), (LEASE, 1.0)):
        raw = settings.option(name)
        number = finite_number(raw) if raw else None
        if raw and (number is None or number < least):
            found.append(f"{name}={shown(raw)} must be a number of seconds, at least {least:g}")
    return found


def _jittered(seconds: float) -> float:
    # Spread retries out so that rows throttled together do not come back together.
    return seconds * random.uniform(1 - JITTER, 1 + JITTER)
