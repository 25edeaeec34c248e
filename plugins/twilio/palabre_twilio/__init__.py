"""Twilio SMS and WhatsApp transport for Palabre, registered like any third-party plugin.

The twilio SDK is an extra (`pip install 'palabre[twilio]'`); this module imports
without it, and the transport says what to install when it starts.
"""

from __future__ import annotations

from palabre.config import Settings
from palabre.hookspecs import hookimpl
from palabre.transports import Transport
from palabre_twilio import config, sandbox
from palabre_twilio.transport import TwilioTransport

__all__ = ["TwilioTransport", "check_settings", "doctor_notes", "register_transports"]


@hookimpl
def check_settings(settings: Settings) -> list[str]:
    return config.problems(settings)


@hookimpl
def doctor_notes(settings: Settings) -> list[str]:
    return sandbox.notes(settings)


@hookimpl
def register_transports() -> list[Transport]:
    return [TwilioTransport()]
