"""Is this request from Twilio? `X-Twilio-Signature`, checked by twilio's own validator.

The signature is an HMAC of the public URL Twilio called (PALABRE_PUBLIC_URL plus the
path behind a proxy) and of every POST parameter received, used or not.
"""

from __future__ import annotations

from palabre_twilio.config import load_sdk
from palabre_twilio.form import Params

HEADER = "X-Twilio-Signature"


def is_signed(token: str, url: str, params: Params, signature: str | None) -> bool:
    """True when `signature` is Twilio's signature of `url` and `params` with `token`."""
    if not signature:
        return False
    validator = load_sdk("twilio.request_validator").RequestValidator(token)
    return bool(validator.validate(url, params, signature))
