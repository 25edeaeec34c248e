"""`palabre serve`'s app: health, readiness, refusal to start without secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from palabre.config import Settings
from palabre.plugins import make_plugin_manager
from palabre.stores.redis import RedisSessionStore
from palabre.web.app import create_app

ROOT = Path(__file__).parent.parent
UIC = ROOT / "flows" / "uic.yaml"


def app_for(tmp_path, **options):
    settings = Settings(data_dir=tmp_path, secrets={"PALABRE_SECRET": "s"})
    plugins = make_plugin_manager(disabled=["twilio", "meta_cloud"])
    return create_app([UIC], settings, plugins=plugins, **options)


def test_health_and_readiness_on_the_embedded_store(tmp_path, live_server):
    with live_server(app_for(tmp_path)) as server:
        assert httpx.get(f"{server.url}/healthz").text == "ok"
        ready = httpx.get(f"{server.url}/readyz")
        assert (ready.status_code, ready.text) == (200, "ready")


def test_readiness_fails_when_redis_is_down(tmp_path, live_server):
    from tests.conftest import free_port

    store = RedisSessionStore(f"redis://127.0.0.1:{free_port()}/0")
    with live_server(app_for(tmp_path, store=store)) as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        assert httpx.get(f"{server.url}/readyz").status_code == 503


def test_readiness_on_real_redis(tmp_path, live_server, redis_url):
    with live_server(app_for(tmp_path, store=RedisSessionStore(redis_url))) as server:
        assert httpx.get(f"{server.url}/readyz").status_code == 200


def serve(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.endswith(("_SECRET", "_TOKEN", "_PASSWORD"))
    }
    return subprocess.run(
        [sys.executable, "-m", "palabre.cli", "serve", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**clean, **env},
        timeout=60,
    )


def test_serve_refuses_to_start_without_the_flow_secret(tmp_path):
    result = serve(
        "--port",
        "1",
        env={"PALABRE_DATA_DIR": str(tmp_path), "PALABRE_DISABLE_PLUGINS": "twilio,meta_cloud"},
    )
    assert result.returncode == 2
    assert "the secret PALABRE_SECRET is not set" in result.stderr
    assert "Traceback" not in result.stderr
