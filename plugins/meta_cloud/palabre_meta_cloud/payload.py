"""A whole webhook body: entries, changes, messages and statuses, checked before any work.

`read_notification` is pure: it parses (with palabre.web.body's bounded JSON reader) and
validates everything first, so a malformed body is refused (400) before a single message
reaches the engine. Unknown fields are ignored; changes for another `field` or another
phone number are skipped; a wamid seen twice in one body is kept once (the engine's store
dedupes across bodies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from palabre.runtime.messages import Inbound
from palabre.web.body import BodyError, parse_json
from palabre_meta_cloud.inbound import PayloadError, part, read_message, sender_address

OBJECT = "whatsapp_business_account"
KNOWN_STATUSES = frozenset({"sent", "delivered", "read", "failed"})


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery status for one message we sent: wamid, status, recipient, error code.

    `recipient` is the canonical address (`whatsapp:+E164` or `whatsapp-user:<BSUID>`),
    the one the contact's key is made from; "" when the status names none we can read.
    """

    wamid: str
    status: str
    recipient: str
    error_code: str | None = None


@dataclass
class Notification:
    """What one webhook body holds, in order, without duplicates."""

    inbounds: list[Inbound] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    skipped: int = 0  # reactions, system messages, other phone numbers, duplicates


def read_notification(body: bytes, phone_number_id: str | None) -> Notification:
    """Parse a webhook body; raises PayloadError when it is not shaped like Meta's.

    Linear in the body's size: duplicates are found with sets, in one pass at the end."""
    document = _json(body)
    notification = Notification()
    if document.get("object", OBJECT) != OBJECT:
        return notification
    for value in _values(document):
        read = _read_value(value)  # checked even when skipped: a bad body is refused whole
        receiver = str(part(value, "metadata").get("phone_number_id", ""))
        if phone_number_id and receiver != phone_number_id:
            notification.skipped += len(read.inbounds) + read.skipped
            continue
        notification.inbounds += read.inbounds
        notification.statuses += read.statuses
        notification.skipped += read.skipped
    return _without_duplicates(notification)


def _json(body: bytes) -> dict[str, Any]:
    try:
        document = parse_json(body)
    except BodyError as exc:  # too deep, huge numbers, lone surrogates: see web.body
        raise PayloadError(exc.reason) from None
    if not isinstance(document, dict):
        raise PayloadError("the body must be a JSON object")
    return document


def _values(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The `value` of every `messages` change of every entry, in order."""
    values = []
    for entry in _list(document, "entry", required=True):
        if not isinstance(entry, dict):
            raise PayloadError("each entry must be an object")
        for change in _list(entry, "changes"):
            if not isinstance(change, dict):
                raise PayloadError("each change must be an object")
            if change.get("field", "messages") == "messages":
                values.append(part(change, "value"))
    return values


def _read_value(value: dict[str, Any]) -> Notification:
    read = Notification()
    for message in _list(value, "messages"):
        inbound = read_message(message)
        if inbound is None:
            read.skipped += 1
        else:
            read.inbounds.append(inbound)
    updates = [_status(status) for status in _list(value, "statuses")]
    read.statuses = [update for update in updates if update is not None]
    return read


def _without_duplicates(notification: Notification) -> Notification:
    """Keep the first of each wamid (inbound) and of each status update, in order."""
    seen: set[str] = set()
    kept = Notification(skipped=notification.skipped)
    for inbound in notification.inbounds:
        if inbound.message_id in seen:
            kept.skipped += 1
            continue
        seen.add(inbound.message_id)
        kept.inbounds.append(inbound)
    kept.statuses = list(dict.fromkeys(notification.statuses))  # hashed, order kept
    return kept


def _status(status: Any) -> StatusUpdate | None:
    if not isinstance(status, dict):
        raise PayloadError("each item of statuses must be an object")
    wamid, state = status.get("id"), status.get("status")
    if not isinstance(wamid, str) or not isinstance(state, str):
        raise PayloadError("a status needs a string id and status")
    if state not in KNOWN_STATUSES:
        return None  # e.g. "deleted" or "warning": nothing to record
    recipient = sender_address(status.get("recipient_id"), status.get("recipient_user_id"))
    return StatusUpdate(wamid, state, str(recipient or ""), _error_code(status))


def _error_code(status: dict[str, Any]) -> str | None:
    errors = _list(status, "errors")
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    code = first.get("code")
    return str(code) if isinstance(code, int | str) and not isinstance(code, bool) else None


def _list(holder: dict[str, Any], key: str, *, required: bool = False) -> list[Any]:
    if key not in holder and not required:
        return []
    value = holder.get(key)
    if not isinstance(value, list):
        raise PayloadError(f"{key} must be a list")
    return value
