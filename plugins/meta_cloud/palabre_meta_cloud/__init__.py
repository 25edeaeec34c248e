"""Meta WhatsApp Cloud API transport for Palabre: the `/meta` webhook and Graph API sending.

Settings: META_APP_SECRET, META_VERIFY_TOKEN and META_ACCESS_TOKEN (secrets),
META_PHONE_NUMBER_ID, META_GRAPH_VERSION (default v21.0) and META_API_BASE (default
https://graph.facebook.com). Without them `palabre serve` refuses to start, unless
`--insecure-dev`; set PALABRE_DISABLE_PLUGINS=meta_cloud when WhatsApp through Meta is
not used.

Modules: transport (the Transport), webhook (GET/POST /meta), signature, payload and
inbound (reading notifications), compose (request bodies), graph (posting, answers),
error_codes (what each Graph error code means), config. Replies leave through
the outbox (palabre.outbox).
"""

from __future__ import annotations

from palabre.config import Settings
from palabre.hookspecs import hookimpl
from palabre.transports import Transport
from palabre_meta_cloud import config
from palabre_meta_cloud.transport import MetaCloudTransport

__all__ = ["MetaCloudTransport"]


@hookimpl
def check_settings(settings: Settings) -> list[str]:
    return config.problems(settings)


@hookimpl
def register_transports() -> list[Transport]:
    return [MetaCloudTransport()]
