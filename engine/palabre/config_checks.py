"""One clear line per malformed setting: the checks behind `Settings.problems()`.

Each check takes a setting's name and raw text and returns None when the value can work,
or one line saying what is wrong and what to do. A line never repeats a secret's value,
nor a URL that may carry a password. Plugins use `credential_problem` and
`http_url_problem` for their own settings, so every message reads the same.
"""

from __future__ import annotations

import math
import re
import tempfile
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
# Far longer than any sane number: int() refuses past 4,300 digits, float() turns 400 into inf.
MAX_NUMBER_TEXT = 32
MAX_REDIS_DATABASE = 2**31 - 1  # Redis numbers its databases with a C int
SHOWN_LENGTH = 40  # how much of a bad value a line repeats: a setting may be megabytes
PATH_LENGTH = 300  # a path is shown whole, up to this: it is what to go and fix
# What a URL's line must not repeat: anything before an `@` in the host part.
_USERINFO = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?//)?[^/?#]*@")
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


def shown(raw: str, limit: int = SHOWN_LENGTH) -> str:
    """`raw` quoted for a message, cut short: one line stays one readable line."""
    return repr(raw) if len(raw) <= limit else repr(raw[:limit]) + "..."


def whole_number(raw: str) -> int | None:
    """`raw` as a whole number (in any script's digits), or None; never a huge or signed one."""
    text = raw.strip()
    if not text.isdecimal() or len(text) > MAX_NUMBER_TEXT:
        return None
    return int(text)


def finite_number(raw: str) -> float | None:
    """`raw` as a finite decimal number (`2.5`, `1e-1`), or None: never nan, inf or overflow."""
    text = raw.strip()
    if len(text) > MAX_NUMBER_TEXT:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def unreadable_text_problem(name: str, value: str) -> str | None:
    """A value that is not UTF-8 (bytes the shell let through) fails wherever it is sent."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return f"{name} is not valid UTF-8 text: write it again in a UTF-8 environment or .env"
    return None


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
    """An absolute http(s) URL with a host, such as https://bot.example.org.

    No spaces (they are not part of a URL) and no `user:password@`: a URL is signed into
    webhooks and written in logs, so credentials in it would leak. A line never repeats
    what is before the `@`.
    """
    text = raw.strip()
    quoted = shown(_USERINFO.sub(lambda match: (match.group(1) or "") + "***@", text, 1))
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - reading it validates the port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{name}={quoted} is not an absolute http(s) URL such as https://bot.example.org"
    if "@" in parts.netloc:
        return (
            f"{name} must not carry a user name or password (user:password@): it would be "
            "written in logs and signed URLs; remove it"
        )
    if any(char.isspace() or not char.isprintable() for char in text):
        return f"{name}={quoted} has a space or a control character inside: it is not a URL"
    if parts.query or parts.fragment:
        return f"{name}={quoted} should be a base URL, without ?query or #fragment"
    return None


def session_ttl_problem(name: str, raw: str) -> str | None:
    """Whole seconds, from 1 to 72 hours: a session holds partial answers no longer."""
    if not raw.strip().isdecimal():
        return (
            f"{name}={shown(raw)} is not a whole number of seconds "
            f"(the default is {DEFAULT_TTL_SECONDS}, 72 hours)"
        )
    seconds = whole_number(raw)
    if seconds == 0:
        return f"{name} must be at least 1 second, got 0"
    if seconds is None or seconds > MAX_SESSION_TTL:
        digits = raw.strip()
        digits = digits if len(digits) <= SHOWN_LENGTH else digits[:SHOWN_LENGTH] + "..."
        return (
            f"{name}={digits} is over {MAX_SESSION_TTL} (72 hours): sessions hold partial "
            "answers, which Palabre keeps no longer than that"
        )
    return None


def session_ttl(raw: str | None) -> int:
    """PALABRE_SESSION_TTL's seconds, or the default when unset or malformed."""
    if not raw or session_ttl_problem("", raw):
        return DEFAULT_TTL_SECONDS
    return whole_number(raw) or DEFAULT_TTL_SECONDS


def log_level_problem(name: str, raw: str) -> str | None:
    if raw.strip().upper() in LOG_LEVELS:
        return None
    return f"{name}={shown(raw)} is not a log level: use one of {', '.join(LOG_LEVELS)}"


def boolean_problem(name: str, raw: str) -> str | None:
    if raw.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return None
    return f"{name}={shown(raw)} is not true or false (also accepted: 1/0, yes/no, on/off)"


def folder_problem(name: str, raw: str) -> str | None:
    """A folder Palabre reads (PALABRE_LOCALES) must exist."""
    return None if Path(raw).is_dir() else f"{name}={shown(raw)} is not an existing folder"


def data_dir_problem(name: str, raw: str) -> str | None:
    """The data folder must be one Palabre can create and write: the embedded databases live
    there. Checked by making (and removing) an empty folder in it, or in its nearest existing
    parent, since permission bits do not tell (root, read-only mounts, /proc)."""
    setting = f"{name}={shown(raw, PATH_LENGTH)}"
    try:
        path = Path(raw).absolute()
        existing = next(p for p in (path, *path.parents) if p.exists())
        if not existing.is_dir():
            return f"{setting} is not a folder Palabre can use: {existing} is a file"
        tempfile.TemporaryDirectory(dir=existing, prefix=".palabre-check-").cleanup()
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or type(exc).__name__
        return (
            f"{setting} cannot be created or written ({why}): set it to a folder Palabre may "
            "write, where it keeps its embedded databases"
        )
    return None


def region_problem(name: str, raw: str) -> str | None:
    """A region `phonenumbers` knows, as an ISO 3166 alpha-2 code such as CD or FR."""
    if is_region(raw):
        return None
    return (
        f"{name}={shown(raw)} is not a region code: use the two-letter ISO 3166 code of the "
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
    option = _redis_option_problem(parsed)
    if option:
        return option
    if scheme == "unix":
        return None if parsed.get("path") else f"REDIS_URL names no socket path ({REDIS_EXAMPLE})"
    if not parsed.get("host"):
        return f"REDIS_URL names no host ({REDIS_EXAMPLE})"
    database = urlsplit(url).path.strip("/")
    number = whole_number(database) if database else 0
    if number is None or number > MAX_REDIS_DATABASE:
        return f"REDIS_URL's database must be a number after the host, like /0 ({REDIS_EXAMPLE})"
    return None


def _redis_option_problem(parsed: dict[str, object]) -> str | None:
    """redis-py reads `?socket_timeout=nan` as NaN, and every connection then fails."""
    for name, value in parsed.items():
        if isinstance(value, float) and not (math.isfinite(value) and value >= 0):
            return f"REDIS_URL's {name} must be a finite, positive number ({REDIS_EXAMPLE})"
    return None


OPTION_CHECKS = {
    "PALABRE_SESSION_TTL": session_ttl_problem,
    "PALABRE_LOG_LEVEL": log_level_problem,
    "PALABRE_PUBLIC_URL": http_url_problem,
    "PALABRE_SIMULATOR": boolean_problem,
    "PALABRE_LOCALES": folder_problem,
    "PALABRE_DEFAULT_REGION": region_problem,
}
