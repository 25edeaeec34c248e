"""What the Twilio transport is configured with, read once through palabre's Settings.

TWILIO_AUTH_TOKEN      secret: checks webhook signatures, authenticates REST calls
TWILIO_ACCOUNT_SID     the account (AC...), for the REST API
TWILIO_SMS_FROM        the sender number for SMS (+E.164); a Messaging Service SID (MG...)
                       is refused, since rest.py sends `From`, never `MessagingServiceSid`
TWILIO_WHATSAPP_FROM   the WhatsApp sender (whatsapp:+E.164; the prefix is added if missing)
TWILIO_API_BASE        the REST API root, https://api.twilio.com unless set

`problems(settings)` is what `palabre serve` checks at start (through `check_settings`);
`TwilioConfig.check()` is what the transport's startup refuses, with the same lines.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from types import ModuleType

from palabre.addresses import TEL, WHATSAPP, InvalidAddress, parse_address
from palabre.config import Settings
from palabre.config_checks import credential_problem, http_url_problem
from palabre.errors import ConfigError

TOKEN = "TWILIO_AUTH_TOKEN"
DEFAULT_API_BASE = "https://api.twilio.com"
INSTALL_HINT = "pip install 'palabre[twilio]'"
# Twilio's API reference gives an Account SID the pattern ^AC[0-9a-fA-F]{32}$.
ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
# Auth Tokens are 32 characters; only the length is enforced, not an alphabet.
TOKEN_LENGTH = 32
WHERE_TOKEN = "copy the Auth Token from the Twilio console (Account > API keys & tokens)"
# Twilio's pattern for a Messaging Service SID: ^MG[0-9a-fA-F]{32}$.
MESSAGING_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
# Each sender setting, and the address scheme it must name.
SENDERS = {"TWILIO_SMS_FROM": TEL, "TWILIO_WHATSAPP_FROM": WHATSAPP}


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
        return cls(
            token=token,
            account_sid=settings.option("TWILIO_ACCOUNT_SID"),
            sms_from=_sender(settings, "TWILIO_SMS_FROM"),
            whatsapp_from=_sender(settings, "TWILIO_WHATSAPP_FROM"),
            api_base=(settings.option("TWILIO_API_BASE") or DEFAULT_API_BASE).rstrip("/"),
            public_url=settings.public_url.rstrip("/") if settings.public_url else None,
        )

    def check(self) -> None:
        """Raise ConfigError naming what to set when the settings cannot work."""
        problem = missing_token() if self.token is None else sid_problem(self.account_sid)
        if problem:
            raise ConfigError(problem)

    def messages_url(self) -> str:
        return f"{self.api_base}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def status_callback(self) -> str | None:
        return f"{self.public_url}/twilio/status" if self.public_url else None


def problems(settings: Settings) -> list[str]:
    """Every problem with the Twilio settings, one line each.

    A missing token is allowed under --insecure-dev; a malformed one never is.
    """
    config = TwilioConfig.from_settings(settings)
    api_base = settings.option("TWILIO_API_BASE")
    found = [
        token_problem(config.token) if config.token else None,
        missing_token() if config.token is None and not settings.dev else None,
        sid_problem(config.account_sid),
        http_url_problem("TWILIO_API_BASE", api_base) if api_base else None,
    ]
    found += [sender_problem(settings, name) for name in SENDERS]
    return [line for line in found if line]


def sender_problem(settings: Settings, name: str) -> str | None:
    """A sender must be a valid phone number, sent in E.164 as Twilio's `From` takes it.

    The line never repeats the value: it may be a person's own number.
    """
    raw = settings.option(name)
    if not raw:
        return None
    if MESSAGING_SERVICE_SID.fullmatch(raw.strip()):
        return (
            f"{name} is a Messaging Service SID (MG...), which Palabre cannot send with: set "
            "the sender's phone number, such as +14155238886"
        )
    try:
        _parse_sender(name, raw, settings.default_region)
    except InvalidAddress as exc:
        example = "whatsapp:+14155238886" if SENDERS[name] == WHATSAPP else "+14155238886"
        return f"{name} must be the sender's phone number, such as {example}: {exc.reason}"
    return None


def _parse_sender(name: str, raw: str, region: str | None) -> str:
    """The sender as Twilio writes it (`+E164`, `whatsapp:+E164`); InvalidAddress if none.

    A national number is read in PALABRE_DEFAULT_REGION, as people's numbers are."""
    scheme = SENDERS[name]
    text = raw.strip()
    if scheme == WHATSAPP and not text.startswith(f"{WHATSAPP}:"):
        text = f"{WHATSAPP}:{text}"
    address = parse_address(text, region)
    if address.scheme != scheme or address.phone is None:
        raise InvalidAddress(f"it is a {address.scheme}: address, not a number for {scheme}")
    return str(address) if scheme == WHATSAPP else address.phone


def _sender(settings: Settings, name: str) -> str | None:
    """The sender in canonical form; a malformed one as written (problems() refuses it)."""
    raw = settings.option(name)
    try:
        return _parse_sender(name, raw, settings.default_region) if raw else None
    except InvalidAddress:
        return raw


def missing_token() -> str:
    return (
        f"the Twilio transport needs {TOKEN}: {WHERE_TOKEN} into the environment or .env, "
        "set PALABRE_DISABLE_PLUGINS=twilio if you do not use Twilio, or start with "
        "--insecure-dev to try it locally without signature checks"
    )


def token_problem(token: str) -> str | None:
    how = f"{WHERE_TOKEN}; it is {TOKEN_LENGTH} characters long"
    return credential_problem(TOKEN, token, minimum=TOKEN_LENGTH, how=how)


def sid_problem(sid: str | None) -> str | None:
    if not sid or ACCOUNT_SID.fullmatch(sid):
        return None
    return (
        "TWILIO_ACCOUNT_SID must be an Account SID starting with AC and 32 hexadecimal "
        f"characters (found '{sid[:2]}...', {len(sid)} characters): copy it from the Twilio "
        "console"
    )


def load_sdk(module: str) -> ModuleType:
    """Import a module of the twilio SDK, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"the Twilio transport needs the twilio package ({module} could not be "
            f"imported): {INSTALL_HINT}"
        ) from exc
