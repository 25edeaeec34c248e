"""The Meta transport's settings, read once at start-up through palabre's Settings.

Secrets (META_APP_SECRET, META_ACCESS_TOKEN, META_VERIFY_TOKEN) come from
`settings.secret`; plain options (META_PHONE_NUMBER_ID, META_GRAPH_VERSION,
META_API_BASE) from `settings.option`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from palabre.config import Settings
from palabre.errors import ConfigError

DEFAULT_API_BASE = "https://graph.facebook.com"
DEFAULT_GRAPH_VERSION = "v21.0"

REQUIRED = {
    "META_APP_SECRET": "App Dashboard > App settings > Basic > App secret",
    "META_VERIFY_TOKEN": "any random string, typed again in the webhook settings",
    "META_ACCESS_TOKEN": "a System User access token with whatsapp_business_messaging",
    "META_PHONE_NUMBER_ID": "WhatsApp > API Setup > Phone number ID",
}


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
    return ConfigError(
        f"the Meta WhatsApp Cloud API transport cannot start: set {lines} in the environment "
        "or in .env. Without META_APP_SECRET anyone could post forged webhooks. If you do "
        "not use WhatsApp through Meta, set PALABRE_DISABLE_PLUGINS=meta_cloud; to try "
        "Palabre locally without these settings, use --insecure-dev"
    )


def _secret(settings: Settings, name: str) -> bytes | None:
    # has_secret first: in dev mode settings.secret() would invent a throwaway value
    return settings.secret(name) if settings.has_secret(name) else None


def _text(value: bytes | None) -> str | None:
    return value.decode() if value is not None else None
