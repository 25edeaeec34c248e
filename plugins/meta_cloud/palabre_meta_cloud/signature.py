"""Meta's webhook signatures: `X-Hub-Signature-256` and the verification token.

The signature is `sha256=` + hex(HMAC-SHA256(app secret, raw body)). It covers the bytes
exactly as received, so it is checked before the body is parsed, never on re-serialised
JSON.
"""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="


def sign(app_secret: bytes, body: bytes) -> str:
    """The header value Meta sends for `body` (used by tests and local tools too)."""
    return PREFIX + hmac.new(app_secret, body, hashlib.sha256).hexdigest()


def signature_matches(app_secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether `header` is the signature of exactly these `body` bytes."""
    if not header or not header.startswith(PREFIX):
        return False
    return hmac.compare_digest(sign(app_secret, body).encode(), header.strip().lower().encode())


def token_matches(expected: bytes | None, given: str | None) -> bool:
    """Whether the `hub.verify_token` given is the configured one (never when unset)."""
    if not expected or given is None:
        return False
    return hmac.compare_digest(expected, given.encode())
