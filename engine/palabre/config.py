"""Configuration's one door: environment variables, with an optional `.env` file.

Everything Palabre reads from the environment is read here, through Starlette's
`Config`, so `.env` works and tests can pass a plain mapping instead. Reading never
fails: a malformed value falls back to its default, and `Settings.problems()` lists
every malformed one, one line each, for `palabre serve` to refuse to start with.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from starlette.config import Config, environ

from palabre.addresses import is_region
from palabre.config_checks import (
    OPTION_CHECKS,
    data_dir_problem,
    keyed_secret_problem,
    missing_secret,
    redis_url_problem,
    session_ttl,
    unreadable_text_problem,
)
from palabre.errors import ConfigError
from palabre.stores.base import DEFAULT_TTL_SECONDS

SECRET = "PALABRE_SECRET"
DATA_DIR = "PALABRE_DATA_DIR"
DISABLE_PLUGINS = "PALABRE_DISABLE_PLUGINS"
METRICS_TOKEN = "PALABRE_METRICS_TOKEN"
IGNORED = {
    "PALABRE_DEV": "PALABRE_DEV is ignored: set PALABRE_SECRET, or start `palabre serve "
    "--insecure-dev` to try Palabre without secrets (never in production)",
}


@dataclass
class Settings:
    """What a Palabre process is configured with."""

    redis_url: str | None = None
    database_url: str | None = field(default=None, repr=False)  # may hold a password
    data_dir: Path = Path(".palabre")
    locales_dir: Path | None = None
    session_ttl: int = DEFAULT_TTL_SECONDS
    dev: bool = False
    log_level: str | None = None  # None: the command's default (INFO for serve)
    public_url: str | None = None
    default_region: str | None = None  # ISO 3166 alpha-2: reads national numbers (0812...)
    options: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        env_file: str | None = ".env",
        dev: bool = False,
    ) -> Settings:
        """The settings from `env` (default: the process environment and `.env`).

        `dev` is true only for `palabre chat` and `palabre serve --insecure-dev`, which may
        use throwaway secrets; no environment variable turns it on.
        """
        config = _config(env, env_file)
        options = _options(config, env)
        locales = options.get("PALABRE_LOCALES")
        return cls(
            redis_url=config("REDIS_URL", default=None) or None,
            database_url=config("DATABASE_URL", default=None) or None,
            data_dir=Path(options.get(DATA_DIR) or ".palabre"),
            locales_dir=Path(locales) if locales else None,
            session_ttl=session_ttl(options.get("PALABRE_SESSION_TTL")),
            dev=dev,
            log_level=options.get("PALABRE_LOG_LEVEL") or None,
            public_url=options.get("PALABRE_PUBLIC_URL") or None,
            default_region=_region(options.get("PALABRE_DEFAULT_REGION")),
            options=options,
            secrets=_secrets(config, env),
        )

    def problems(self, keyed_secrets: Iterable[str] = ()) -> list[str]:
        """Every malformed setting, one clear line each; empty when all can work.

        `palabre serve` lists them all and refuses to start. PALABRE_SECRET, and the
        secrets named in `keyed_secrets` (a flow's `secret_env`), key hashes and tokens:
        each must be set (unless in dev mode) and at least 32 characters. The constructor
        checks nothing, so tests may build Settings with short throwaway secrets.
        """
        unreadable = self._unreadable()
        found: list[str | None] = [unreadable[name] for name in sorted(unreadable)]
        names = sorted({SECRET, *keyed_secrets} - set(unreadable))
        found += [self._keyed_secret_problem(name) for name in names]
        redis_url = self.redis_url if "REDIS_URL" not in unreadable else None
        found.append(redis_url_problem(redis_url) if redis_url else None)
        for name, check in OPTION_CHECKS.items():
            raw = self.options.get(name)
            found.append(check(name, raw) if raw and name not in unreadable else None)
        found.append(self._data_dir_problem() if DATA_DIR not in unreadable else None)
        return [line for line in found if line]

    def _unreadable(self) -> dict[str, str]:
        """The settings whose text cannot be sent anywhere (not UTF-8), by name."""
        urls = {"REDIS_URL": self.redis_url or "", "DATABASE_URL": self.database_url or ""}
        values = {**self.options, **self.secrets, **urls}
        found = {name: unreadable_text_problem(name, value) for name, value in values.items()}
        return {name: line for name, line in found.items() if line}

    def _data_dir_problem(self) -> str | None:
        """The data folder, when set or when an embedded store (no Redis, no DATABASE_URL)
        will write there."""
        if not self.options.get(DATA_DIR) and self.redis_url and self.database_url:
            return None
        return data_dir_problem(DATA_DIR, str(self.data_dir))

    def notices(self) -> list[str]:
        """Settings that are set but no longer read, each with what to do instead."""
        return [line for name, line in IGNORED.items() if name in self.options]

    @property
    def disabled_plugins(self) -> set[str]:
        """The plugin names in PALABRE_DISABLE_PLUGINS (comma-separated)."""
        raw = self.options.get(DISABLE_PLUGINS, "")
        return {name.strip() for name in raw.split(",") if name.strip()}

    def _keyed_secret_problem(self, name: str) -> str | None:
        value = self.secrets.get(name, "")
        if not value:
            return None if self.dev else missing_secret(name, secrets.token_hex(32))
        return keyed_secret_problem(name, value)

    def secret(self, name: str) -> bytes:
        """The secret named `name`, or a dev secret (said loudly by the caller) in dev mode."""
        value = self.secrets.get(name)
        if value:
            return value.encode()
        if self.dev:
            return self._dev_secret(name)
        raise ConfigError(missing_secret(name, secrets.token_hex(32)))

    def _dev_secret(self, name: str) -> bytes:
        path = self.data_dir / f"dev-secret-{name.lower()}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip().encode()

    def has_secret(self, name: str) -> bool:
        return bool(self.secrets.get(name))

    @property
    def metrics_token(self) -> str | None:
        """The bearer token that opens /metrics beyond loopback (PALABRE_METRICS_TOKEN)."""
        return self.secrets.get(METRICS_TOKEN) or None

    def option(self, name: str, default: str | None = None) -> str | None:
        """A non-secret setting such as TWILIO_ACCOUNT_SID or META_GRAPH_VERSION."""
        return self.options.get(name) or default


def _region(raw: str | None) -> str | None:
    """An ISO 3166 region code, upper-cased; None when unset or unknown (problems() says)."""
    code = (raw or "").strip().upper()
    return code if code and is_region(code) else None


def _config(env: Mapping[str, str] | None, env_file: str | None) -> Config:
    if env is not None:
        return Config(environ=env)
    exists = env_file and Path(env_file).exists()
    return Config(env_file if exists else None, environ=environ)


PREFIXES = ("PALABRE_", "TWILIO_", "META_", "DHIS2_")
SECRET_SUFFIXES = ("_SECRET", "_TOKEN", "_PASSWORD")


def _options(config: Config, env: Mapping[str, str] | None) -> dict[str, str]:
    """The settings of Palabre and its plugins: names starting with a known prefix.

    Spaces around a value are dropped, as `.env` already does: a URL or a sender number
    with a trailing space would otherwise fail at every use. Secrets keep theirs, and
    `credential_problem` names them.
    """
    names = set(env if env is not None else environ) | set(getattr(config, "file_values", {}))
    wanted = [n for n in names if n.startswith(PREFIXES) and not n.endswith(SECRET_SUFFIXES)]
    return {name: config(name, default="").strip() for name in wanted}


def _secrets(config: Config, env: Mapping[str, str] | None) -> dict[str, str]:
    """Every variable whose name ends in _SECRET or _TOKEN, from the env and .env."""
    names = set(env if env is not None else environ) | set(getattr(config, "file_values", {}))
    wanted = [n for n in names if n.endswith(SECRET_SUFFIXES)]
    return {name: config(name, default="") for name in wanted}
