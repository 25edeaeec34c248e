"""Status callbacks: Twilio telling what became of a message we sent.

Statuses are queued, sent, delivered, read, undelivered and failed (and a few more);
the message log keeps them moving forward only, and moves the outbox row of that
MessageSid forward too (`MessageLog.status`). Error 21610 means the contact replied
STOP to Twilio: both purposes are withdrawn in the consent ledger for that address, so
the outbox sends them nothing more (palabre.stores.consent).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from palabre.purposes import PURPOSES
from palabre.transports import Host
from palabre_twilio.form import MalformedRequest, Params
from palabre_twilio.inbound import SID, recipient_of

log = logging.getLogger("palabre.twilio")

OPTED_OUT = "21610"
VALIDITY_EXPIRED = "30036"  # still in Twilio's queue past its ValidityPeriod: never sent
SANDBOX = "+14155238886"  # Twilio's WhatsApp sandbox number
# Why a WhatsApp message failed, as the person running Palabre can act on it.
HINTS = {
    "63015": (
        "the recipient has not joined the WhatsApp sandbox, or their join lapsed (3 days): "
        f"they must send 'join <your code>' to {SANDBOX} again; an approved sender has no "
        "such rule"
    ),
    "63016": (
        "outside WhatsApp's 24-hour window: declare an approved template on the step "
        "(template: {twilio: {content_sid, variables}})"
    ),
}
STATUS = re.compile(r"[a-z_]{1,32}")


@dataclass(frozen=True)
class StatusUpdate:
    """One status callback, read and checked."""

    message_sid: str
    status: str
    error_code: str | None
    recipient: str


def read_status(params: Params) -> StatusUpdate:
    """The update a callback carries; MalformedRequest when it makes no sense."""
    sid = _either(params, "MessageSid", "SmsSid")
    status = _either(params, "MessageStatus", "SmsStatus")
    if not SID.fullmatch(sid):
        raise MalformedRequest("MessageSid is not a Twilio id")
    if not STATUS.fullmatch(status):
        raise MalformedRequest("MessageStatus is not a status")
    error = params.get("ErrorCode", "").strip() or None
    if error is not None and not (error.isascii() and error.isdigit()):  # not `²` nor `١`
        raise MalformedRequest("ErrorCode is not a number")
    if status == "failed" and error == VALIDITY_EXPIRED:
        status = "expired"  # not a failure to act on: the message was not worth sending late
    return StatusUpdate(sid, status, error, recipient_of(params.get("To", "")))


def _either(params: Params, name: str, older_name: str) -> str:
    """A field under its current name or the older one Twilio still sends."""
    value = params.get(name, "").strip() or params.get(older_name, "").strip()
    if not value:
        raise MalformedRequest(f"missing {name}")
    return value


async def record_status(host: Host, update: StatusUpdate) -> None:
    """Write the update to the message log, and the withdrawn consent it may mean."""
    key = host.contact_key(update.recipient) if update.recipient else ""
    await host.stores.messages.status(
        update.message_sid, update.status, update.error_code, channel="twilio", contact_key=key
    )
    if update.error_code == OPTED_OUT and key:  # the recipient sent STOP to Twilio: no more
        channel = "whatsapp" if update.recipient.startswith("whatsapp:") else "sms"
        for purpose in PURPOSES:
            await host.stores.consent.record(
                key,
                purpose,
                False,
                "provider",
                channel=channel,
                detail=OPTED_OUT,
                key=f"twilio:{OPTED_OUT}:{update.message_sid}:{purpose}",
            )
    fields = {
        "message_sid": update.message_sid,
        "status": update.status,
        "error_code": update.error_code,
        "contact": key,
    }
    hint = HINTS.get(update.error_code or "")
    if hint:  # final: the outbox never retries a failed status
        log.warning("twilio message failed: %s", hint, extra=fields)
        return
    log.info("twilio status received", extra=fields)
