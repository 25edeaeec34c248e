"""What the Meta transport needs to start: its three secrets (or --insecure-dev, said
loudly), and a configurable Graph API version.

The fake Graph API is reached through httpx.ASGITransport. The fakes and helpers these
tests share are in `tests/meta_fakes.py`.
"""

from __future__ import annotations

import pytest
from tests.meta_fakes import ALICE_AT, PHONE_ID, app_for, graph, settings_for, started

from palabre.errors import ConfigError
from palabre.runtime.messages import Outbound

__all__ = ["graph"]  # fixtures from tests/meta_fakes.py


@pytest.mark.anyio
async def test_the_graph_version_is_configurable(graph, tmp_path):
    settings = settings_for(tmp_path, graph.url)
    settings.options["META_GRAPH_VERSION"] = "v22.0"
    async with started(settings, tmp_path, http_transport=graph.asgi()) as meta:
        await meta.send(Outbound(ALICE_AT, "Bonjour", "fr"))
    assert graph.requests[0]["path"] == f"/v22.0/{PHONE_ID}/messages"


@pytest.mark.parametrize("missing", ["META_APP_SECRET", "META_ACCESS_TOKEN", "META_VERIFY_TOKEN"])
@pytest.mark.anyio
async def test_without_its_secrets_the_transport_refuses_to_start(graph, tmp_path, missing):
    settings = settings_for(tmp_path, graph.url, **{missing: True})
    with pytest.raises(ConfigError, match=missing) as refused:
        async with started(settings, tmp_path, http_transport=graph.asgi()):
            pass
    assert "--insecure-dev" in str(refused.value)
    assert "PALABRE_DISABLE_PLUGINS=meta_cloud" in str(refused.value)


@pytest.mark.anyio
async def test_insecure_dev_lets_it_start_without_them(graph, tmp_path, caplog):
    settings = settings_for(tmp_path, graph.url, META_APP_SECRET=True, META_VERIFY_TOKEN=True)
    async with started(settings, tmp_path, http_transport=graph.asgi(), insecure_dev=True) as meta:
        assert meta.config.app_secret is None
    assert "INSECURE DEV MODE" in caplog.text


@pytest.mark.anyio
async def test_the_app_does_not_start_without_the_app_secret(graph, tmp_path):
    app = app_for(settings_for(tmp_path, graph.url, META_APP_SECRET=True), http=graph.client())
    with pytest.raises(ConfigError, match="META_APP_SECRET"):
        async with app.router.lifespan_context(app):
            pass  # the lifespan runs the transport's startup, which refuses
