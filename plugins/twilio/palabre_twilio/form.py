"""Read a Twilio webhook body: strictly form-encoded UTF-8, bounded in size.

Starlette's `request.form()` needs python-multipart and is lenient; a webhook body is
small and simple, so it is parsed here, and anything odd is a `MalformedRequest`
(answered 400, or 413 when too large) rather than an exception that would become a 500.
Decoding is strict UTF-8, percent-escapes included, so no lone surrogate (`%ED%BF%BF`)
can reach the signature check, the engine or its stores.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request

from palabre.web.body import BodyError, read_body

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_BODY_BYTES = 64 * 1024  # a webhook carries at most 1600 characters and 10 media URLs
MAX_FIELDS = 200

Params = ImmutableMultiDict[str, str]


class MalformedRequest(ValueError):
    """The request is not a webhook Twilio could have sent; `reason` is safe to answer."""

    def __init__(self, reason: str, status_code: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


async def read_form(request: Request) -> Params:
    """The POST parameters, every one of them (the signature covers them all)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise MalformedRequest(f"expected {FORM_TYPE}")
    body = await _read_body(request)
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=bool(body),
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except ValueError:  # UnicodeDecodeError is a ValueError too
        raise MalformedRequest("the body is not valid form-encoded UTF-8") from None
    return ImmutableMultiDict(pairs)


async def _read_body(request: Request) -> bytes:
    try:
        return await read_body(request, MAX_BODY_BYTES)
    except BodyError as exc:  # 413 when too large: the engine's shared, capped reader
        raise MalformedRequest(exc.reason, exc.status_code) from None


def field(params: Params, name: str) -> str:
    """A parameter that must be present and not empty."""
    value = params.get(name, "").strip()
    if not value:
        raise MalformedRequest(f"missing {name}")
    return value
