"""The JSON bodies of Graph API `/messages` requests: text, buttons, lists, images, templates.

An outbound message with options becomes reply buttons (up to 3, titles up to 20
characters), else a list (up to 10 rows, titles up to 24), else numbered plain text,
which also covers bodies longer than an interactive message allows (1024 characters).
Reply ids are the option ids, so a tap comes back as `Inbound.reply_id`.

The recipient is the contact's canonical address in Meta's form (`recipient_fields`): a
number goes in `to` as digits without `+`, a business-scoped user id in `recipient` (Meta
reads `to` first when both are set, so only one is). An address Meta cannot reach raises
InvalidAddress (a ValueError) before any request is made.
"""

from __future__ import annotations

from typing import Any

from palabre.addresses import WHATSAPP_USER, Address, InvalidAddress, read_address
from palabre.render import as_plain_text, one_line
from palabre.runtime.messages import Option, Outbound

MAX_BUTTONS, MAX_BUTTON_TITLE, MAX_BUTTON_ID = 3, 20, 256
MAX_ROWS, MAX_ROW_TITLE, MAX_ROW_ID = 10, 24, 200
MAX_INTERACTIVE_BODY = 1024
MAX_CAPTION = 1024  # an image caption

# The list's "open" button: one short word per language, a neutral sign otherwise.
LIST_BUTTON = {"fr": "Choisir", "en": "Choose", "ar": "اختر", "es": "Elegir", "pt": "Escolher"}
LIST_BUTTON_FALLBACK = "☰"


def message_body(message: Outbound) -> dict[str, Any]:
    """The request body that shows `message` best within WhatsApp's limits."""
    options = message.options
    body_fits = 0 < len(message.text) <= MAX_INTERACTIVE_BODY
    if options and body_fits and _fit(options, MAX_BUTTONS, MAX_BUTTON_TITLE, MAX_BUTTON_ID):
        return _envelope(message.contact, "interactive", _buttons(message))
    if options and body_fits and _fit(options, MAX_ROWS, MAX_ROW_TITLE, MAX_ROW_ID):
        return _envelope(message.contact, "interactive", _list(message))
    return text_body(message.contact, as_plain_text(message))


def text_body(contact: str, text: str) -> dict[str, Any]:
    """A plain text message."""
    return _envelope(contact, "text", {"preview_url": False, "body": text})


def image_body(
    contact: str, media_id: str | None = None, link: str | None = None, caption: str | None = None
) -> dict[str, Any]:
    """An image by uploaded media id or by public link (exactly one of the two)."""
    if bool(media_id) == bool(link):
        raise ValueError("send an image by media_id or by link, exactly one of them")
    image: dict[str, Any] = {"id": media_id} if media_id else {"link": link}
    if caption:
        image["caption"] = caption
    return _envelope(contact, "image", image)


def template_body(
    contact: str, name: str, language: str, components: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """An approved template, the only message allowed outside the 24-hour window. Each run
    of whitespace in a text parameter becomes one space, as Meta requires."""
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    if components:
        template["components"] = [_flattened(component) for component in components]
    return _envelope(contact, "template", template)


def _flattened(component: dict[str, Any]) -> dict[str, Any]:
    parameters = component.get("parameters")
    if not isinstance(parameters, list):
        return component
    return {**component, "parameters": [_one_line(parameter) for parameter in parameters]}


def _one_line(parameter: Any) -> Any:
    if (
        isinstance(parameter, dict)
        and parameter.get("type") == "text"
        and isinstance(parameter.get("text"), str)
    ):
        return {**parameter, "text": one_line(parameter["text"])}
    return parameter


def recipient_fields(address: Address) -> dict[str, str]:
    """`{"to": "243812345678"}` for a number, `{"recipient": "<BSUID>"}` for a user id."""
    if address.scheme == WHATSAPP_USER:
        return {"recipient": address.value}
    if address.phone is None:
        raise InvalidAddress("WhatsApp reaches phone numbers and WhatsApp user ids only")
    return {"to": address.phone.removeprefix("+")}


def _envelope(contact: str, kind: str, content: dict[str, Any]) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        **recipient_fields(read_address(contact)),
        "type": kind,
        kind: content,
    }


def _fit(options: tuple[Option, ...], count: int, title: int, ident: int) -> bool:
    if len(options) > count:
        return False
    return all(0 < len(o.title) <= title and 0 < len(o.id) <= ident for o in options)


def _buttons(message: Outbound) -> dict[str, Any]:
    buttons = [{"type": "reply", "reply": {"id": o.id, "title": o.title}} for o in message.options]
    return {"type": "button", "body": {"text": message.text}, "action": {"buttons": buttons}}


def _list(message: Outbound) -> dict[str, Any]:
    rows = [{"id": o.id, "title": o.title} for o in message.options]
    label = LIST_BUTTON.get(message.language.replace("-", "_").split("_")[0], LIST_BUTTON_FALLBACK)
    return {
        "type": "list",
        "body": {"text": message.text},
        "action": {"button": label, "sections": [{"rows": rows}]},
    }
