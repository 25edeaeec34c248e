"""The Meta transport's settings, read once at start-up through palabre's Settings.

Secrets (META_APP_SECRET, META_ACCESS_TOKEN, META_VERIFY_TOKEN) come from
`settings.secret`; plain options (META_PHONE_NUMBER_ID, META_GRAPH_VERSION,
META_API_BASE) from `settings.option`. `problems(settings)` is what `palabre serve`
checks at start (through `check_settings`); the transport's startup refuses with `refusal`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from palabre.config import Settings
from palabre.config_checks import credential_problem, http_url_problem, shown
from palabre.errors import ConfigError

DEFAULT_API_BASE = "https://graph.facebook.com"
DEFAULT_GRAPH_VERSION = "v21.0"

REQUIRED = {
    "META_APP_SECRET": "App Dashboard > App settings > Basic > App secret",
    "META_VERIFY_TOKEN": "any random string, typed again in the webhook settings",
    "META_ACCESS_TOKEN": "a System User access token with whatsapp_business_messaging",
    "META_PHONE_NUMBER_ID": "WhatsApp > API Setup > Phone number ID",
}


# The shortest value each credential can have; only lengths are enforced, not alphabets.
MINIMUM_LENGTH = {
    "META_APP_SECRET": 32,  # an app secret is 32 characters
    "META_VERIFY_TOKEN": 8,  # chosen by you: make it random, e.g. secrets.token_hex(16)
    "META_ACCESS_TOKEN": 1,
}
# ASCII digits only: \d and str.isdecimal() also take Arabic-Indic digits, which the Graph
# API's URLs do not.
GRAPH_VERSION = re.compile(r"v[0-9]{1,4}\.[0-9]{1,4}")
PHONE_NUMBER_ID = re.compile(r"[0-9]{1,32}")


@dataclass(frozen=True)
class MetaConfig:
    """What the transport needs: None where a setting is missing (insecure dev only)."""

    app_secret: bytes | None
    verify_token: bytes | None
    access_token: str | None = field(repr=False)
    phone_number_id: str | None
    api_base: str = DEFAULT_API_BASE
    graph_version: str = DEFAULT_GRAPH_VERSION

    @property
    def messages_url(self) -> str:
        """The Graph API endpoint that sends messages from this phone number."""
        base = self.api_base.rstrip("/")
        return f"{base}/{self.graph_version}/{self.phone_number_id}/messages"

    @property
    def media_url(self) -> str:
        """The Graph API endpoint that takes uploads (images...) for this phone number."""
        base = self.api_base.rstrip("/")
        return f"{base}/{self.graph_version}/{self.phone_number_id}/media"

    @property
    def can_send(self) -> bool:
        return bool(self.access_token and self.phone_number_id)


def read_config(settings: Settings) -> MetaConfig:
    """The settings as they are, missing ones as None."""
    return MetaConfig(
        app_secret=_secret(settings, "META_APP_SECRET"),
        verify_token=_secret(settings, "META_VERIFY_TOKEN"),
        access_token=_text(_secret(settings, "META_ACCESS_TOKEN")),
        phone_number_id=settings.option("META_PHONE_NUMBER_ID"),
        api_base=settings.option("META_API_BASE", DEFAULT_API_BASE) or DEFAULT_API_BASE,
        graph_version=settings.option("META_GRAPH_VERSION", DEFAULT_GRAPH_VERSION)
        or DEFAULT_GRAPH_VERSION,
    )


def missing_settings(config: MetaConfig) -> list[str]:
    """The names of the required settings that are not set."""
    present = {
        "META_APP_SECRET": config.app_secret,
        "META_VERIFY_TOKEN": config.verify_token,
        "META_ACCESS_TOKEN": config.access_token,
        "META_PHONE_NUMBER_ID": config.phone_number_id,
    }
    return [name for name, value in present.items() if not value]


def refusal(missing: list[str]) -> ConfigError:
    """The error that stops `palabre serve`, saying what to set and where to find it."""
    lines = "; ".join(f"{name} ({REQUIRED[name]})" for name in missing)
    why = (
        " Without META_APP_SECRET anyone could post forged webhooks."
        if "META_APP_SECRET" in missing
        else ""
    )
    return ConfigError(
        f"the Meta WhatsApp Cloud API transport cannot start: set {lines} in the environment "
        f"or in .env.{why} If you do not use WhatsApp through Meta, set "
        "PALABRE_DISABLE_PLUGINS=meta_cloud; to try Palabre locally without these settings, "
        "use --insecure-dev"
    )


def problems(settings: Settings) -> list[str]:
    """Every problem with the Meta settings, one line each.

    Missing settings are allowed under --insecure-dev; malformed ones never are.
    """
    missing = missing_settings(read_config(settings))
    found = [str(refusal(missing))] if missing and not settings.dev else []
    for name, minimum in MINIMUM_LENGTH.items():
        value = settings.secrets.get(name)
        how = REQUIRED[name]
        found.append(credential_problem(name, value, minimum=minimum, how=how) if value else None)
    found += [_phone_number_id_problem(settings), _graph_version_problem(settings)]
    api_base = settings.option("META_API_BASE")
    found.append(http_url_problem("META_API_BASE", api_base) if api_base else None)
    return [line for line in found if line]


def _phone_number_id_problem(settings: Settings) -> str | None:
    value = settings.option("META_PHONE_NUMBER_ID")
    if not value or PHONE_NUMBER_ID.fullmatch(value):
        return None
    return (
        "META_PHONE_NUMBER_ID must be the numeric Phone number ID shown in WhatsApp > "
        "API Setup, not the phone number itself"
    )


def _graph_version_problem(settings: Settings) -> str | None:
    value = settings.option("META_GRAPH_VERSION")
    if not value or GRAPH_VERSION.fullmatch(value):
        return None
    example = DEFAULT_GRAPH_VERSION
    return f"META_GRAPH_VERSION={shown(value)} is not a Graph API version such as {example}"


def _secret(settings: Settings, name: str) -> bytes | None:
    # has_secret first: in dev mode settings.secret() would invent a throwaway value
    return settings.secret(name) if settings.has_secret(name) else None


def _text(value: bytes | None) -> str | None:
    return value.decode() if value is not None else None
