"""One clear line per malformed setting: the checks behind `Settings.problems()`.

Each check takes a setting's name and raw text and returns None when the value can work,
or one line saying what is wrong and what to do. A line never repeats a secret's value,
nor a URL that may carry a password. Plugins use `credential_problem` and
`http_url_problem` for their own settings, so every message reads the same.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from palabre.addresses import is_region
from palabre.stores.base import DEFAULT_TTL_SECONDS

MIN_SECRET_LENGTH = 32
GENERATE_SECRET = 'python3 -c "import secrets; print(secrets.token_hex(32))"'
MAX_SESSION_TTL = 72 * 3600
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
REDIS_EXAMPLE = (
    "for example redis://localhost:6379/0, rediss://host:6380/0 or unix:///run/redis.sock"
)

# The words people leave in a .env copied from a template.
_PLACEHOLDER = re.compile(
    r"change.?me|replace.?me|your[_-]|placeholder|example|xxxx|todo|fixme|<[^>]*>|\.\.\.",
    re.IGNORECASE,
)


def looks_like_placeholder(value: str) -> bool:
    """True for `changeme`, `your_token_here`, `<secret>`, `xxxx`, or one repeated character."""
    text = value.strip()
    return bool(_PLACEHOLDER.search(text)) or len(set(text)) <= 1


def credential_problem(name: str, value: str, *, minimum: int = 1, how: str = "") -> str | None:
    """What is wrong with a set secret: a placeholder, or shorter than `minimum` characters.

    `how` says where a good value comes from. Whether the secret must be set at all is the
    caller's decision (`--insecure-dev` lets some be missing).
    """
    advice = f": {how}" if how else ""
    if value != value.strip():
        return f"{name} has spaces or a line break around it; remove them{advice}"
    placeholder = f"{name} looks like a placeholder, not a real value{advice}"
    if _PLACEHOLDER.search(value):
        return placeholder
    if len(value) < minimum:
        return f"{name} is too short: it needs at least {minimum} characters{advice}"
    return placeholder if looks_like_placeholder(value) else None


def keyed_secret_problem(name: str, value: str) -> str | None:
    """A secret that keys hashes and tokens (PALABRE_SECRET) needs 32 random characters."""
    return credential_problem(
        name, value, minimum=MIN_SECRET_LENGTH, how=f"generate one with {GENERATE_SECRET}"
    )


def missing_secret(name: str, example: str) -> str:
    """The line for a required secret that is not set."""
    return (
        f"the secret {name} is not set: set it in the environment or in .env (for example: "
        f"{name}={example}), or start `palabre serve --insecure-dev` to try Palabre with a "
        "throwaway development secret (never in production)"
    )


def http_url_problem(name: str, raw: str) -> str | None:
    """An absolute http(s) URL with a host, such as https://bot.example.org."""
    try:
        parts = urlsplit(raw.strip())
        parts.port  # noqa: B018 - reading it validates the port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{name}={raw!r} is not an absolute http(s) URL such as https://bot.example.org"
    if parts.query or parts.fragment:
        return f"{name}={raw!r} should be a base URL, without ?query or #fragment"
    return None


def session_ttl_problem(name: str, raw: str) -> str | None:
    """Whole seconds, from 1 to 72 hours: a session holds partial answers no longer."""
    if not raw.strip().isdecimal():
        return (
            f"{name}={raw!r} is not a whole number of seconds "
            f"(the default is {DEFAULT_TTL_SECONDS}, 72 hours)"
        )
    seconds = int(raw)
    if seconds <= 0:
        return f"{name} must be at least 1 second, got {seconds}"
    if seconds > MAX_SESSION_TTL:
        return (
            f"{name}={seconds} is over {MAX_SESSION_TTL} (72 hours): sessions hold partial "
            "answers, which Palabre keeps no longer than that"
        )
    return None


def log_level_problem(name: str, raw: str) -> str | None:
    if raw.strip().upper() in LOG_LEVELS:
        return None
    return f"{name}={raw!r} is not a log level: use one of {', '.join(LOG_LEVELS)}"


def boolean_problem(name: str, raw: str) -> str | None:
    if raw.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return None
    return f"{name}={raw!r} is not true or false (also accepted: 1/0, yes/no, on/off)"


def folder_problem(name: str, raw: str) -> str | None:
    """A folder Palabre reads (PALABRE_LOCALES) must exist."""
    return None if Path(raw).is_dir() else f"{name}={raw!r} is not an existing folder"


def data_dir_problem(name: str, raw: str) -> str | None:
    """The data folder may not exist yet, but it must not be a file."""
    path = Path(raw)
    is_file = path.exists() and not path.is_dir()
    return f"{name}={raw!r} is a file, not a folder" if is_file else None


def region_problem(name: str, raw: str) -> str | None:
    """A region `phonenumbers` knows, as an ISO 3166 alpha-2 code such as CD or FR."""
    if is_region(raw):
        return None
    return (
        f"{name}={raw!r} is not a region code: use the two-letter ISO 3166 code of the "
        "country whose national numbers people write, such as CD, SN or FR"
    )


def redis_url_problem(url: str) -> str | None:
    """REDIS_URL as redis-py reads it: redis://, rediss:// or unix://, with a host or a path."""
    from redis.connection import parse_url

    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in ("redis", "rediss", "unix"):
        return f"REDIS_URL must start with redis://, rediss:// or unix:// ({REDIS_EXAMPLE})"
    try:
        parsed = parse_url(url)
    except ValueError as exc:  # redis-py's message names the part (port, option), not the URL
        return f"REDIS_URL is malformed: {exc} ({REDIS_EXAMPLE})"
    if scheme == "unix":
        return None if parsed.get("path") else f"REDIS_URL names no socket path ({REDIS_EXAMPLE})"
    if not parsed.get("host"):
        return f"REDIS_URL names no host ({REDIS_EXAMPLE})"
    database = urlsplit(url).path.strip("/")
    if database and not database.isdecimal():
        return f"REDIS_URL's database must be a number after the host, like /0 ({REDIS_EXAMPLE})"
    return None


OPTION_CHECKS = {
    "PALABRE_SESSION_TTL": session_ttl_problem,
    "PALABRE_LOG_LEVEL": log_level_problem,
    "PALABRE_PUBLIC_URL": http_url_problem,
    "PALABRE_SIMULATOR": boolean_problem,
    "PALABRE_LOCALES": folder_problem,
    "PALABRE_DATA_DIR": data_dir_problem,
    "PALABRE_DEFAULT_REGION": region_problem,
}
