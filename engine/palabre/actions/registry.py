"""`registry.remember`: has this value been seen before? Stores only a keyed hash.

The value (for the UIC flow, the code) is hashed with HMAC-SHA256 under the flow's
secret, so the registry holds no clear data and cannot be reversed by guessing names
without the secret. Returns `{"new": true}` the first time and `{"new": false}` after; the
same turn retried (a provider's redelivery after a crash) still gets `{"new": true}`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from palabre.actions import Action, ActionContext
from palabre.errors import ActionError


def keyed_hash(secret: bytes, namespace: str, value: str) -> str:
    """HMAC-SHA256 of `namespace` and `value`, hex."""
    message = f"{namespace}\x00{value}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


async def remember(arguments: dict[str, Any], context: ActionContext) -> dict[str, bool]:
    if context.stores is None or context.secret is None:
        raise ActionError("registry.remember needs the stores (for the registry) and a secret")
    namespace = str(arguments.get("namespace") or context.flow_id)
    digest = keyed_hash(context.secret, namespace, str(arguments["value"]))
    new = await context.stores.registry.add(namespace, digest, claim=context.idempotency_key)
    return {"new": new, "existed": not new}


ACTION = Action(
    "registry.remember",
    remember,
    "Remember a keyed hash of `value`; says whether it was new.",
    parameters=("value", "namespace"),
    required=("value",),
    needs_secret=True,
)
