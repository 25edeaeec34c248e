"""DHIS-2 identifiers (UIDs): eleven characters, a letter then ten letters or digits.

This is DHIS-2's own rule (`CodeGenerator`, import error E1048). A client that makes its
own UIDs can retry an import safely: the second attempt finds its first one.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string

UID = re.compile(r"^[A-Za-z][A-Za-z0-9]{10}$")
_LETTERS = string.ascii_letters
_ALPHANUMERIC = string.ascii_letters + string.digits


def is_uid(value: object) -> bool:
    """True when `value` is a string shaped like a DHIS-2 UID."""
    return isinstance(value, str) and UID.match(value) is not None


def generate_uid() -> str:
    """A new random UID, from a cryptographic source (62^10 × 52 possibilities)."""
    return secrets.choice(_LETTERS) + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(10))


def derived_uid(seed: str) -> str:
    """The UID that `seed` always gives (SHA-256 of it, read in the UID alphabet)."""
    number = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big")
    number, first = divmod(number, len(_LETTERS))
    rest = []
    for _ in range(10):
        number, index = divmod(number, len(_ALPHANUMERIC))
        rest.append(_ALPHANUMERIC[index])
    return _LETTERS[first] + "".join(rest)
