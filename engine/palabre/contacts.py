"""Contact keys: the keyed hash that stands for a contact in store keys, logs and records.

A key is derived from `PALABRE_SECRET` alone, so every worker, every restart and every
set of flows computes the same key for the same address, and an opt-out or a session
stored under it keeps applying. Addresses never appear in keys, logs or key names.
"""

from __future__ import annotations

import hashlib
import hmac

# Domain separation: the same secret also keys other hashes (the UIC registry, media URLs).
_PURPOSE = b"palabre contact key v1"
KEY_HEX_CHARS = 32  # 128 bits: collisions between contacts are out of reach


def contact_hasher(secret: bytes) -> bytes:
    """The key that contact hashes are made with, derived from the deployment secret."""
    return hmac.new(secret, _PURPOSE, hashlib.sha256).digest()


def contact_key(hasher: bytes, address: str) -> str:
    """The keyed hash of `address` (hex); any string works, even a lone surrogate."""
    data = address.encode("utf-8", "surrogatepass")
    return hmac.new(hasher, data, hashlib.sha256).hexdigest()[:KEY_HEX_CHARS]
