"""`qr.code`: draw `text` as a QR code and store the PNG; returns `{"image": <media id>}`.

The image goes to the media store (`palabre.stores.media`), which serves it only behind a
signed, expiring URL and purges it once expired: knowing someone's code never reveals its
image. A flow attaches it with `image: "{{ <save_as>.image }}"` on a `say` or `end` step.

Arguments: `text` (required), `ttl` (seconds the image lives, 24 hours unless set).
A failure raises ActionError with nothing to show the contact: the step's `on_error`
decides what they are told.
"""

from __future__ import annotations

from typing import Any

from palabre.actions import Action, ActionContext
from palabre.errors import ActionError
from palabre.stores.media import DEFAULT_TTL
from palabre_qr.drawing import DRAWER

CONTENT_TYPE = "image/png"
MAX_TTL = 30 * 24 * 3600  # an image of someone's code should not outlive its use


async def qr_code(arguments: dict[str, Any], context: ActionContext) -> dict[str, str]:
    text = str(arguments.get("text") or "")
    if not text.strip():
        raise ActionError(f"{context.flow_id}.{context.step_id}: qr.code got an empty text")
    ttl = _ttl(arguments.get("ttl"), context)
    if context.stores is None:
        raise ActionError("qr.code needs the media store (the engine's stores.media)")
    png = await DRAWER.draw(text)  # off the event loop (palabre_qr.drawing)
    media_id = await context.stores.media.put(png, CONTENT_TYPE, ttl)
    return {"image": media_id}


def _ttl(value: Any, context: ActionContext) -> int:
    """Seconds the image lives: whole, from 1 to 30 days' worth; the default when unset."""
    if value is None or str(value).strip() == "":
        return DEFAULT_TTL
    given = str(value).strip()
    digits = given.lstrip("0") or "0"
    # ASCII digits only (isdigit() accepts `²`, which int() refuses), and lengths before
    # int(): it refuses thousands of digits.
    whole = given.isascii() and given.isdigit() and len(digits) <= len(str(MAX_TTL))
    if not whole or not 0 < int(digits) <= MAX_TTL:
        raise ActionError(
            f"{context.flow_id}.{context.step_id}: qr.code's ttl must be a whole number of "
            f"seconds from 1 to {MAX_TTL} (got {given[:20]!r})"
        )
    return int(digits)


ACTION = Action(
    "qr.code",
    qr_code,
    "Draw `text` as a QR code PNG kept `ttl` seconds; returns {image: media id}.",
    parameters=("text", "ttl"),
    required=("text",),
)
