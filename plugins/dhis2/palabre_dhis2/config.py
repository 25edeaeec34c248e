"""The DHIS-2 connection, read from the process settings (the one configuration door).

DHIS2_URL           base URL, e.g. https://dhis.example.org (no /api)
DHIS2_TOKEN         a personal access token, sent as `Authorization: ApiToken <token>`
DHIS2_USERNAME      with DHIS2_PASSWORD: HTTP Basic, when there is no token
DHIS2_PASSWORD
DHIS2_VERSION       the server's version, 2.38 to 2.42 (default 2.41): picks query names
DHIS2_TIMEOUT       seconds per request (default 2.5), more than 0.1 and at most the
                    registration's budget (8 s, `register.BUDGET_SECONDS`)
DHIS2_RETRY_DELAYS  pauses before each retry of a timeout or 5xx (default 0.3): at most 5,
                    each 0 to 5 s, separated by commas

The defaults keep a registration inside a webhook's time budget (Twilio waits 15 s): at
worst two tries to find and two to create, about 11 s, after which it is queued instead.

`problems(settings)` lists every malformed DHIS2_* setting at once, one line each: it is
what `palabre serve` checks at start (through `check_settings`), so a bad DHIS2_TIMEOUT
stops the server instead of failing every registration later.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from palabre.config import Settings
from palabre.config_checks import credential_problem, finite_number, http_url_problem, shown
from palabre.errors import ConfigError
from palabre_dhis2.params import DEFAULT_VERSION, Version, parse_version

DEFAULT_TIMEOUT = 2.5
DEFAULT_RETRY_DELAYS = (0.3,)
MIN_TIMEOUT = 0.1  # no HTTPS request to a real server completes sooner
MAX_DELAY = 5.0
MAX_RETRIES = 5
NO_CREDENTIALS = "no credentials: set DHIS2_TOKEN, or DHIS2_USERNAME and DHIS2_PASSWORD"
TOKEN_HOW = "create a personal access token in DHIS-2 (Profile > Personal access tokens)"


@dataclass(frozen=True)
class Dhis2Config:
    """Where DHIS-2 is and how to sign in. Its repr never shows the credentials."""

    url: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    version: Version = DEFAULT_VERSION
    timeout: float = DEFAULT_TIMEOUT
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS

    def __post_init__(self) -> None:
        # However a config is built, asyncio's deadlines and sleeps need finite numbers.
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ConfigError("the DHIS-2 timeout must be a finite number of seconds above 0")
        if not all(math.isfinite(delay) and delay >= 0 for delay in self.retry_delays):
            raise ConfigError("the DHIS-2 retry delays must be finite numbers of seconds, >= 0")

    @classmethod
    def from_settings(cls, settings: Settings) -> Dhis2Config:
        """Read the DHIS2_* options and secrets; ConfigError names a malformed one."""
        return cls(
            url=_url(settings.option("DHIS2_URL")),
            username=settings.option("DHIS2_USERNAME") or "",
            password=settings.secrets.get("DHIS2_PASSWORD", ""),
            token=settings.secrets.get("DHIS2_TOKEN", ""),
            version=parse_version(settings.option("DHIS2_VERSION")),
            timeout=_timeout(settings.option("DHIS2_TIMEOUT")),
            retry_delays=_delays(settings.option("DHIS2_RETRY_DELAYS")),
        )

    @property
    def configured(self) -> bool:
        """True when DHIS2_URL is set: without it, DHIS-2 actions are skipped."""
        return bool(self.url)

    def auth(self) -> httpx.Auth | None:
        """Basic auth from DHIS2_USERNAME/DHIS2_PASSWORD (None with a token or no user)."""
        if self.token or not self.username:
            return None
        return httpx.BasicAuth(self.username, self.password)

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"ApiToken {self.token}"
        return headers

    def credentials_hint(self) -> str:
        """Which settings hold the credentials in use, for error messages."""
        if self.token:
            return "DHIS2_TOKEN"
        if self.username:
            return "DHIS2_USERNAME and DHIS2_PASSWORD"
        return NO_CREDENTIALS


def problems(settings: Settings) -> list[str]:
    """Every problem with the DHIS2_* settings, one line each; empty when they can work."""
    readers: list[Callable[[], Any]] = [
        lambda: _url(settings.option("DHIS2_URL")),
        lambda: parse_version(settings.option("DHIS2_VERSION")),
        lambda: _timeout(settings.option("DHIS2_TIMEOUT")),
        lambda: _delays(settings.option("DHIS2_RETRY_DELAYS")),
    ]
    found: list[str | None] = []
    for read in readers:
        try:
            read()
        except ConfigError as exc:
            found.append(str(exc))
    found += _credential_problems(settings)
    return [line for line in found if line]


def _credential_problems(settings: Settings) -> list[str | None]:
    token = settings.secrets.get("DHIS2_TOKEN", "")
    username = settings.option("DHIS2_USERNAME") or ""
    password = settings.secrets.get("DHIS2_PASSWORD", "")
    found = [
        credential_problem("DHIS2_TOKEN", token, how=TOKEN_HOW) if token else None,
        credential_problem("DHIS2_PASSWORD", password) if password else None,
    ]
    if username and not password and not token:
        found.append("DHIS2_USERNAME is set without DHIS2_PASSWORD: set both, or DHIS2_TOKEN")
    if settings.option("DHIS2_URL") and not (token or username):
        found.append(f"DHIS2_URL is set but DHIS-2 has {NO_CREDENTIALS}")
    return found


def _url(raw: str | None) -> str:
    """The base URL without its trailing slash; ConfigError when it is not one."""
    if not raw:
        return ""
    problem = http_url_problem("DHIS2_URL", raw)
    if problem:
        raise ConfigError(problem)
    url = raw.strip().rstrip("/")
    if url.endswith("/api"):
        raise ConfigError(f"DHIS2_URL should be the server's base URL, without /api: {url[:-4]}")
    return url


def _timeout(raw: str | None) -> float:
    """DHIS2_TIMEOUT: finite seconds, above MIN_TIMEOUT and within the action's budget."""
    from palabre_dhis2.register import BUDGET_SECONDS  # register imports this module

    if not raw:
        return DEFAULT_TIMEOUT
    value = finite_number(raw)
    if value is None:
        raise ConfigError(f"DHIS2_TIMEOUT={shown(raw)} is not a number of seconds, such as 2.5")
    if not MIN_TIMEOUT < value <= BUDGET_SECONDS:
        raise ConfigError(
            f"DHIS2_TIMEOUT must be more than {MIN_TIMEOUT:g} and at most {BUDGET_SECONDS:g} "
            f"seconds (a registration's whole budget), got {shown(raw.strip())}"
        )
    return value


def _delays(raw: str | None) -> tuple[float, ...]:
    """DHIS2_RETRY_DELAYS: up to MAX_RETRIES finite pauses of 0 to MAX_DELAY seconds."""
    if not raw:
        return DEFAULT_RETRY_DELAYS
    parts = raw.split(",")
    delays = [finite_number(part) for part in parts[: MAX_RETRIES + 1]]
    usable = [delay for delay in delays if delay is not None and 0 <= delay <= MAX_DELAY]
    if len(parts) > MAX_RETRIES or len(usable) < len(parts):
        raise ConfigError(
            f"DHIS2_RETRY_DELAYS={shown(raw)} should be at most {MAX_RETRIES} pauses of 0 to "
            f"{MAX_DELAY:g} seconds, separated by commas, e.g. 0.2,0.5,1"
        )
    return tuple(usable)
