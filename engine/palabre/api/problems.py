"""Errors of the events API as RFC 9457 problem documents (`application/problem+json`).

Each names what went wrong in `title`, says why in `detail`, and, for a request whose
fields are at fault, lists them in `errors`: `{"pointer": "#/to", "detail": "..."}`, as
the RFC's own example does. No detail quotes a value the caller sent (a phone number).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://palabre.dev/problems/"  # a stable name per kind of problem


@dataclass(frozen=True)
class FieldError:
    """One field at fault: where (a JSON pointer into the body) and why."""

    pointer: str
    detail: str


class Problem(Exception):
    """An answer other than 202, raised by the API's parts and answered by its route."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.kind, self.title, self.detail = status, kind, title, detail
        self.errors, self.headers = errors or [], headers or {}

    def document(self) -> dict[str, Any]:
        """The problem document."""
        found: dict[str, Any] = {
            "type": TYPE_BASE + self.kind,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            found["errors"] = [{"pointer": e.pointer, "detail": e.detail} for e in self.errors]
        return found

    def response(self) -> JSONResponse:
        """The HTTP answer."""
        return JSONResponse(
            self.document(), self.status, headers=self.headers, media_type=MEDIA_TYPE
        )


def invalid(errors: list[FieldError]) -> Problem:
    """422: the JSON is well formed, but fields are wrong."""
    named = ", ".join(e.pointer.removeprefix("#/") for e in errors)
    return Problem(422, "invalid-event", "The event has invalid fields", f"see: {named}", errors)


def unauthorized(detail: str) -> Problem:
    """401, with the challenge RFC 6750 asks for."""
    challenge = {"WWW-Authenticate": 'Bearer realm="palabre"'}
    return Problem(401, "unauthorized", "No valid API key", detail, headers=challenge)
