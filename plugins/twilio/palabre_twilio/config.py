"""What the Twilio transport is configured with, read once through palabre's Settings.

TWILIO_AUTH_TOKEN      secret: checks webhook signatures, authenticates REST calls
TWILIO_ACCOUNT_SID     the account (AC...), for the REST API
TWILIO_SMS_FROM        the sender number for SMS (+E.164)
TWILIO_WHATSAPP_FROM   the WhatsApp sender (whatsapp:+E.164; the prefix is added if missing)
TWILIO_API_BASE        the REST API root, https://api.twilio.com unless set
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from palabre.config import Settings
from palabre.errors import ConfigError

TOKEN = "TWILIO_AUTH_TOKEN"
DEFAULT_API_BASE = "https://api.twilio.com"
INSTALL_HINT = "pip install 'palabre[twilio]'"


@dataclass(frozen=True)
class TwilioConfig:
    """The Twilio settings; `token` is None only in insecure development mode."""

    token: str | None
    account_sid: str | None
    sms_from: str | None
    whatsapp_from: str | None
    api_base: str
    public_url: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioConfig:
        token = settings.secret(TOKEN).decode() if settings.has_secret(TOKEN) else None
        whatsapp_from = settings.option("TWILIO_WHATSAPP_FROM")
        if whatsapp_from and not whatsapp_from.startswith("whatsapp:"):
            whatsapp_from = f"whatsapp:{whatsapp_from}"
        return cls(
            token=token,
            account_sid=settings.option("TWILIO_ACCOUNT_SID"),
            sms_from=settings.option("TWILIO_SMS_FROM"),
            whatsapp_from=whatsapp_from,
            api_base=(settings.option("TWILIO_API_BASE") or DEFAULT_API_BASE).rstrip("/"),
            public_url=settings.public_url.rstrip("/") if settings.public_url else None,
        )

    def check(self) -> None:
        """Raise ConfigError naming what to set when the settings cannot work."""
        if self.token is None:
            raise ConfigError(
                f"the Twilio transport needs {TOKEN}: copy the Auth Token from the Twilio "
                "console (Account > API keys & tokens) into the environment or .env, or "
                "start with --insecure-dev to try it locally without signature checks"
            )
        if self.account_sid and not self.account_sid.startswith("AC"):
            raise ConfigError(
                "TWILIO_ACCOUNT_SID must be an Account SID starting with AC (found "
                f"'{self.account_sid[:2]}...'): copy it from the Twilio console"
            )

    def messages_url(self) -> str:
        return f"{self.api_base}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def status_callback(self) -> str | None:
        return f"{self.public_url}/twilio/status" if self.public_url else None


def load_sdk(module: str) -> ModuleType:
    """Import a module of the twilio SDK, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"the Twilio transport needs the twilio package ({module} could not be "
            f"imported): {INSTALL_HINT}"
        ) from exc
