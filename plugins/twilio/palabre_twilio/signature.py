"""Is this request from Twilio? `X-Twilio-Signature`, computed by twilio's own SDK.

The signature is an HMAC of the public URL Twilio called (PALABRE_PUBLIC_URL plus the
path behind a proxy) and of every POST parameter received, used or not.

The SDK's `RequestValidator.validate` always computes two HMACs (the URL with and
without its default port, since Twilio signs either) and finds each parameter's values
through two caught AttributeErrors: about 250 µs per webhook here. This asks the SDK for
the same signatures (`compute_signature`, its `remove_port` / `add_port`), the second
only when the first does not match, with a validator kept per token.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

from palabre_twilio.config import load_sdk
from palabre_twilio.form import Params

HEADER = "X-Twilio-Signature"


def is_signed(token: str, url: str, params: Params, signature: str | None) -> bool:
    """True when `signature` is Twilio's signature of `url` and `params` with `token`."""
    if not signature:
        return False
    validator, values = _validator(token), _Values(params)
    for candidate in _signed_urls(url):
        if hmac.compare_digest(validator.compute_signature(candidate, values), signature):
            return True
    return False


@lru_cache(maxsize=64)
def _signed_urls(url: str) -> tuple[str, str]:
    """The two forms of `url` Twilio may have signed: without, then with its default port
    (a webhook's URL is one of a few, so each is parsed once)."""
    sdk, parsed = load_sdk("twilio.request_validator"), urlparse(url)
    return sdk.remove_port(parsed), sdk.add_port(parsed)


@lru_cache(maxsize=8)
def _validator(token: str) -> Any:
    return load_sdk("twilio.request_validator").RequestValidator(token)


class _Values:
    """The parameters as the SDK reads them fastest: names, then `getall(name)`."""

    def __init__(self, params: Params) -> None:
        self._params = params

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def getall(self, name: str) -> list[str]:
        return self._params.getlist(name)
