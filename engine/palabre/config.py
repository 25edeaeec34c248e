"""Configuration's one door: environment variables, with an optional `.env` file.

Everything Palabre reads from the environment is read here, through Starlette's
`Config`, so `.env` works and tests can pass a plain mapping instead.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from starlette.config import Config, environ

from palabre.errors import ConfigError
from palabre.stores.base import DEFAULT_TTL_SECONDS


@dataclass
class Settings:
    """What a Palabre process is configured with."""

    redis_url: str | None = None
    data_dir: Path = Path(".palabre")
    locales_dir: Path | None = None
    session_ttl: int = DEFAULT_TTL_SECONDS
    dev: bool = False
    log_level: str = "WARNING"
    public_url: str | None = None
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
        config = _config(env, env_file)
        locales = config("PALABRE_LOCALES", default=None)
        return cls(
            redis_url=config("REDIS_URL", default=None) or None,
            data_dir=Path(config("PALABRE_DATA_DIR", default=".palabre")),
            locales_dir=Path(locales) if locales else None,
            session_ttl=config("PALABRE_SESSION_TTL", cast=int, default=DEFAULT_TTL_SECONDS),
            dev=dev or config("PALABRE_DEV", cast=bool, default=False),
            log_level=config("PALABRE_LOG_LEVEL", default="WARNING"),
            public_url=config("PALABRE_PUBLIC_URL", default=None) or None,
            options=_options(config, env),
            secrets=_secrets(config, env),
        )

    def secret(self, name: str) -> bytes:
        """The secret named `name`, or a dev secret (said loudly by the caller) in dev mode."""
        value = self.secrets.get(name)
        if value:
            return value.encode()
        if self.dev:
            return self._dev_secret(name)
        raise ConfigError(
            f"the secret {name} is not set: set it in the environment or in .env "
            f"(for example: {name}={secrets.token_hex(32)}), or use --dev to try Palabre "
            "with a throwaway development secret"
        )

    def _dev_secret(self, name: str) -> bytes:
        path = self.data_dir / f"dev-secret-{name.lower()}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip().encode()

    def has_secret(self, name: str) -> bool:
        return bool(self.secrets.get(name))

    def option(self, name: str, default: str | None = None) -> str | None:
        """A non-secret setting such as TWILIO_ACCOUNT_SID or META_GRAPH_VERSION."""
        return self.options.get(name) or default


def _config(env: Mapping[str, str] | None, env_file: str | None) -> Config:
    if env is not None:
        return Config(environ=env)
    exists = env_file and Path(env_file).exists()
    return Config(env_file if exists else None, environ=environ)


PREFIXES = ("PALABRE_", "TWILIO_", "META_", "DHIS2_")
SECRET_SUFFIXES = ("_SECRET", "_TOKEN", "_PASSWORD")


def _options(config: Config, env: Mapping[str, str] | None) -> dict[str, str]:
    """The settings of Palabre and its plugins: names starting with a known prefix."""
    names = set(env if env is not None else environ) | set(getattr(config, "file_values", {}))
    wanted = [n for n in names if n.startswith(PREFIXES) and not n.endswith(SECRET_SUFFIXES)]
    return {name: config(name, default="") for name in wanted}


def _secrets(config: Config, env: Mapping[str, str] | None) -> dict[str, str]:
    """Every variable whose name ends in _SECRET or _TOKEN, from the env and .env."""
    names = set(env if env is not None else environ) | set(getattr(config, "file_values", {}))
    wanted = [n for n in names if n.endswith(SECRET_SUFFIXES)]
    return {name: config(name, default="") for name in wanted}
