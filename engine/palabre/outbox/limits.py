"""Per-sender throughput and per-recipient pacing, with the `limits` library's moving window.

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
The window moves: no one-second window ever holds more than the rate, not just each
calendar second. The counters live in memory when Palabre is embedded, and in Redis
(REDIS_URL) when it is set, so that every worker of a deployment shares one budget.

A send is counted a moment before its request reaches the provider, and that moment
varies (a burst of sends queues behind itself). So each process also keeps its own sends
to a sender within a window `GUARD` seconds longer (two sends counted exactly one window
apart cannot arrive less than a window apart because the first one was slower), and
spreads them: at most a tenth of the rate in any tenth of the window.
"""

from __future__ import annotations

import time
from collections import deque

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from palabre.config import Settings
from palabre.config_checks import shown

PACE = "PALABRE_PACE_PER_CONTACT"
SMS = "PALABRE_RATE_TWILIO_SMS"
NAMES = {"meta_cloud": "PALABRE_RATE_META", "twilio": "PALABRE_RATE_TWILIO"}
DEFAULTS = {
    "PALABRE_RATE_META": "80/second",
    "PALABRE_RATE_TWILIO": "80/second",
    SMS: "10/second",
    PACE: "20/minute",
}
KEY_PREFIX = "palabre:limits"
GUARD = 0.05  # seconds: more than the spread between counting a send and its arrival


class RateLimits:
    """The budgets of every sender and recipient; `wait` takes one send from both."""

    def __init__(self, settings: Settings, storage: Storage | None = None) -> None:
        self.settings = settings
        self.storage = storage or storage_for(settings.redis_url)
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.pace = self._item(PACE)
        self._sent: dict[tuple[str, str], deque[float]] = {}

    def _item(self, name: str) -> RateLimitItem | None:
        raw = self.settings.option(name) or DEFAULTS.get(name)
        try:
            return parse(raw) if raw else None
        except ValueError:  # `palabre serve` refused it already (problems)
            return parse(DEFAULTS[name]) if name in DEFAULTS else None

    def rate_for(self, channel: str, address: str) -> RateLimitItem | None:
        """The throughput limit of the sender of `channel` that reaches `address`."""
        if channel == "twilio" and address.startswith("tel:"):
            return self._item(SMS)
        return self._item(setting_name(channel))

    async def wait(self, channel: str, sender: str, address: str, contact_key: str) -> float:
        """0 when this send may go now (and it is counted); else the seconds to wait."""
        rate = self.rate_for(channel, address)
        guarded = self._guard_wait(rate, (channel, sender)) if rate else 0.0
        if guarded:
            return guarded
        budgets = [(rate, (channel, sender)), (self.pace, (contact_key,))]
        wanted = [(item, keys) for item, keys in budgets if item is not None]
        for item, keys in wanted:  # test all before taking any: a refusal spends nothing
            if not await self.limiter.test(item, *keys):
                return await self._until_free(item, keys)
        for item, keys in wanted:
            if not await self.limiter.hit(item, *keys):  # another worker took it meanwhile
                return await self._until_free(item, keys)
        if rate:
            self._sent.setdefault((channel, sender), deque()).append(time.time())
        return 0.0

    def _guard_wait(self, rate: RateLimitItem, key: tuple[str, str]) -> float:
        """This process's own check: the rate over its window plus GUARD seconds, and a
        tenth of it over a tenth of the window, so that sends leave smoothly, not in
        bursts that arrive with more spread than they left with."""
        window = rate.get_expiry()
        sent, now = self._sent.setdefault(key, deque()), time.time()
        while sent and sent[0] <= now - window - GUARD:
            sent.popleft()
        waits = [0.0]
        for amount, span in ((rate.amount, window + GUARD), (-(-rate.amount // 10), window / 10)):
            recent = [t for t in sent if t > now - span] if span < window else list(sent)
            if len(recent) >= amount:
                waits.append(recent[len(recent) - amount] + span - now)
        return max(waits) and max(0.001, max(waits))

    async def _until_free(self, item: RateLimitItem, keys: tuple[str, ...]) -> float:
        stats = await self.limiter.get_window_stats(item, *keys)
        return max(0.001, stats.reset_time - time.time())


def setting_name(channel: str) -> str:
    """The setting that limits a transport's senders: PALABRE_RATE_META, _TWILIO..."""
    return NAMES.get(channel, f"PALABRE_RATE_{channel.upper()}")


def storage_for(redis_url: str | None) -> Storage:
    """Redis when REDIS_URL is set (shared by every worker), else this process's memory."""
    if not redis_url:
        return MemoryStorage()
    scheme, rest = redis_url.split("://", 1)
    uri = f"async+redis+unix://{rest}" if scheme == "unix" else f"async+{redis_url}"
    return RedisStorage(uri, implementation="redispy", key_prefix=KEY_PREFIX)


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
