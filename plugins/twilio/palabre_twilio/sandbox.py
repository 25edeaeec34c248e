"""What `palabre doctor` says about the Twilio settings: Twilio's WhatsApp sandbox, above all.

The sandbox is a WhatsApp sender Twilio shares between every account, +14155238886, for
trying WhatsApp before Meta approves a sender of one's own. Its rules, from Twilio's
sandbox page and the page of error 63015:
- it messages only the people who have sent `join <your sandbox code>` to it (the code is
  on the sandbox page of the Twilio console); anyone else fails with error 63015;
- a join lasts three days, after which the person must join again;
- it sends one message every three seconds at most.

The refusal, 63015, may come after Twilio accepted the message, in a status callback:
without PALABRE_PUBLIC_URL no status callback is asked for, so it is never seen.
"""

from __future__ import annotations

from palabre.config import Settings
from palabre_twilio.config import TwilioConfig
from palabre_twilio.status import SANDBOX

SANDBOX_SENDER = f"whatsapp:{SANDBOX}"


def notes(settings: Settings) -> list[str]:
    """The `doctor_notes` of the Twilio plugin: the sandbox's rules, when it is the sender,
    and status callbacks that cannot be asked for."""
    config = TwilioConfig.from_settings(settings)
    found = [sandbox_note()] if config.whatsapp_from == SANDBOX_SENDER else []
    if (config.whatsapp_from or config.sms_from) and config.status_callback() is None:
        found.append(no_status_callback_note())
    return found


def sandbox_note() -> str:
    return (
        f"TWILIO_WHATSAPP_FROM is Twilio's WhatsApp sandbox ({SANDBOX}), for trying WhatsApp "
        f"only: each person must first send `join <your sandbox code>` to {SANDBOX} (the code "
        "is on the sandbox page of the Twilio console); a join lapses 3 days after it was "
        "sent, and the person must join again; a message to someone who has not joined, or "
        "whose join lapsed, fails with Twilio error 63015, which is final and never retried; "
        "the sandbox sends one message every 3 seconds at most (PALABRE_RATE_TWILIO=1 per 3 "
        "seconds keeps to it). In production, use a WhatsApp sender approved for your business"
    )


def no_status_callback_note() -> str:
    return (
        "PALABRE_PUBLIC_URL is not set, so Twilio is not asked to report what becomes of the "
        "messages it accepts: `palabre messages` never learns that one was delivered, or that "
        "it failed later (as error 63015 does); set PALABRE_PUBLIC_URL to this server's public "
        "https address, where Twilio can reach /twilio/status"
    )
