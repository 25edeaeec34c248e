"""Per-sender throughput and per-recipient pacing.

    PALABRE_RATE_META         per WhatsApp number on Meta's Cloud API  (80/second: Meta's
                              default throughput; 130429 beyond it)
    PALABRE_RATE_TWILIO       per Twilio WhatsApp sender               (80/second: Twilio's
                              default for WhatsApp senders)
    PALABRE_RATE_TWILIO_SMS   per Twilio SMS number                    (10/second: it depends
                              on the number type; a US long code takes 1, a short code 100)
    PALABRE_RATE_<CHANNEL>    any other transport, by its name          (no limit)
    PALABRE_PACE_PER_CONTACT  per recipient, all channels together     (20/minute: a burst of
                              replies passes, a loop or a broadcast storm does not; Meta's
                              pair rate limit, 131056, answers the rest)

A rate is written as `limits` reads it: `80/second`, `20/minute`, `10 per 6 seconds`.

A sender's sends are paced, not burst: each reserves the next slot of its sender's
schedule (GCRA's virtual scheduling), slots `window / (amount * (1 - MARGIN))` apart, and
leaves at its slot. The provider counts a request when it arrives, though, and the time
from a slot to the arrival varies (a commit, the event loop, the network, the provider's
own queue): pacing alone lets arrivals bunch above the rate. So a send also takes room in
its sender's window (`admit`) right before its request: the window holds the sends that
may still count at the provider, those unanswered and those answered less than a window
ago, and never more than the rate. A request arrives after its room was taken and before
its answer is read, so no window at the provider ever holds more than the rate, whatever
the jitter. It costs each send its own duration: a sender sends at most
`amount / (window + duration)`. MARGIN keeps the pace the rule and the window a backstop
while sends take under about MARGIN of the window (20 ms at 80/second).

The recipient's pace is the `limits` library's moving window. Everything lives in this
process's memory when Palabre is embedded, and in Redis (REDIS_URL) when it is set, so
that every worker of a deployment shares one budget (see schedules); as with `limits`,
each worker reads its own clock, and their clocks must agree (NTP).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter

from palabre.config import Settings
from palabre.config_checks import shown
from palabre.outbox.schedules import schedules_for, storage_for

PACE = "PALABRE_PACE_PER_CONTACT"
SMS = "PALABRE_RATE_TWILIO_SMS"
NAMES = {"meta_cloud": "PALABRE_RATE_META", "twilio": "PALABRE_RATE_TWILIO"}
DEFAULTS = {
    "PALABRE_RATE_META": "80/second",
    "PALABRE_RATE_TWILIO": "80/second",
    SMS: "10/second",
    PACE: "20/minute",
}
MARGIN = 0.02  # pace 2 % under the rate (see above)


@dataclass(frozen=True)
class Slot:
    """One send's turn in its sender's schedule, from `reserve` to `done`. Not `taken`:
    nothing was reserved, as a budget is spent for longer than the caller would wait;
    come back at `at`."""

    at: float
    taken: bool = True
    key: str = ""  # the sender's schedule, "" when the sender has no limit
    rate: RateLimitItem | None = None
    uid: str = field(default_factory=lambda: uuid.uuid4().hex)


class RateLimits:
    """The budgets of every sender and recipient: `reserve` a slot, wait to be admitted
    (look first, take the room right before the request), say when the send is `done`."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings, self.clock = settings, clock
        self.storage = storage or storage_for(settings.redis_url, clock)
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.schedules = schedules_for(self.storage)
        self.pace = self._item(PACE)

    def _item(self, name: str) -> RateLimitItem | None:
        return configured_rate(self.settings, name)

    def rate_for(self, channel: str, address: str) -> RateLimitItem | None:
        """The throughput limit of the sender of `channel` that reaches `address`."""
        return sender_rate(self.settings, channel, address)

    async def reserve(
        self, channel: str, sender: str, address: str, contact_key: str, within: float
    ) -> Slot:
        """The next slot of the sender's schedule, if it is at most `within` seconds away;
        taking it also takes one send from the recipient's pace."""
        now = self.clock()
        if self.pace and not await self.limiter.test(self.pace, contact_key):
            return Slot(now + await self._pace_free(self.pace, contact_key), taken=False)
        rate, slot = self.rate_for(channel, address), Slot(now)
        if rate:
            key = f"{channel}/{sender}"
            at, taken = await self.schedules.reserve(key, now, _interval(rate), within)
            slot = Slot(at, taken, key, rate)
        if slot.taken and self.pace:  # one send in flight per contact: nobody races us
            await self.limiter.hit(self.pace, contact_key)
        return slot

    async def admit(self, slot: Slot, take: bool = True) -> float:
        """0 when the send of `slot` may go now: its slot came and its sender's window has
        room, which it takes (it counts until `done`, then a window more); else the
        seconds to wait. `take=False` only looks."""
        now = self.clock()
        if now < slot.at:
            return slot.at - now
        if slot.rate is None:
            return 0.0
        amount, window = slot.rate.amount, float(slot.rate.get_expiry())
        return await self.schedules.admit(slot.key, slot.uid if take else "", now, amount, window)

    async def done(self, slot: Slot, answered: float | None = None) -> None:
        """The send of `slot` was `answered` (at the latest now), or never left: it
        counts one window more."""
        if slot.rate is not None:
            until = (answered or self.clock()) + float(slot.rate.get_expiry())
            await self.schedules.done(slot.key, slot.uid, until)

    async def _pace_free(self, item: RateLimitItem, contact_key: str) -> float:
        stats = await self.limiter.get_window_stats(item, contact_key)
        return max(0.001, stats.reset_time - self.clock())


def sender_rate(settings: Settings, channel: str, address: str) -> RateLimitItem | None:
    """The throughput limit of the sender of `channel` (a transport) that reaches `address`."""
    if channel == "twilio" and address.startswith("tel:"):
        return configured_rate(settings, SMS)
    return configured_rate(settings, setting_name(channel))


def per_second(rate: RateLimitItem) -> float:
    """The sends per second a sender limited to `rate` makes, at its pace."""
    return 1 / _interval(rate)


def configured_rate(settings: Settings, name: str) -> RateLimitItem | None:
    """The rate the setting `name` sets, or its default; None when it has none."""
    raw = settings.option(name) or DEFAULTS.get(name)
    try:
        return parse(raw) if raw else None
    except ValueError:  # `palabre serve` refused it already (problems)
        return parse(DEFAULTS[name]) if name in DEFAULTS else None


def _interval(rate: RateLimitItem) -> float:
    """Seconds between two slots of a sender limited to `rate`."""
    return rate.get_expiry() / (rate.amount * (1 - MARGIN))


def setting_name(channel: str) -> str:
    """The setting that limits a transport's senders: PALABRE_RATE_META, _TWILIO..."""
    return NAMES.get(channel, f"PALABRE_RATE_{channel.upper()}")


def problems(settings: Settings) -> list[str]:
    """One line per rate setting `limits` cannot read."""
    names = {*DEFAULTS, *(n for n in settings.options if n.startswith("PALABRE_RATE_"))}
    found = []
    for name in sorted(names):
        raw = settings.option(name)
        if not raw:
            continue
        try:
            readable = parse(raw).amount >= 1
        except ValueError:
            readable = False
        if not readable:
            found.append(
                f"{name}={shown(raw)} is not a rate: write it like 80/second, 20/minute "
                "or 10 per 6 seconds"
            )
    return found
