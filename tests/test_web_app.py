"""`palabre serve`'s app: health, readiness, refusal to start without secrets."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from palabre.config import Settings
from palabre.errors import ConfigError
from palabre.logs import KeyValueFormatter
from palabre.plugins import make_plugin_manager
from palabre.stores.redis import RedisSessionStore
from palabre.web.app import create_app, keep_running

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
    assert "`palabre serve --insecure-dev`" in result.stderr, "the flag is --insecure-dev"
    assert "Traceback" not in result.stderr


# -- background jobs say why they failed -------------------------------------------------


def failing_once(error: Exception):
    """A background job that fails the first time with `error`, then finishes."""
    calls: list[int] = []

    async def retry_registrations(host):
        calls.append(1)
        if len(calls) == 1:
            raise error

    return retry_registrations, calls


@pytest.mark.anyio
async def test_a_failed_background_job_logs_its_reason_then_restarts(caplog):
    job, calls = failing_once(ConfigError("DHIS2_TIMEOUT='abc' is not a number of seconds"))
    with caplog.at_level(logging.ERROR, logger="palabre.web"):
        await keep_running(job, host=None, pause=0)
    assert len(calls) == 2, "the job is started again after failing"
    (record,) = caplog.records
    assert record.getMessage() == (
        "background job failing_once.<locals>.retry_registrations failed: ConfigError: "
        "DHIS2_TIMEOUT='abc' is not a number of seconds; restarting in 0 s"
    )


@pytest.mark.anyio
async def test_a_foreign_error_is_logged_by_type_and_place_never_its_message(caplog):
    job, _ = failing_once(ValueError("no contact +243899999999 answered Mbengue"))
    with caplog.at_level(logging.ERROR, logger="palabre.web"):
        await keep_running(job, host=None, pause=0)
    (record,) = caplog.records
    assert "ValueError at test_web_app.py:" in record.getMessage()
    assert "+243899999999" not in record.getMessage()
    assert "Mbengue" not in record.getMessage()


def test_the_log_format_adds_the_reason_of_an_exception_on_the_same_line():
    try:
        raise ConfigError("REDIS_URL names no host")
    except ConfigError:
        record = logging.LogRecord("palabre.x", logging.ERROR, "f", 1, "failed", (), sys.exc_info())
    line = KeyValueFormatter().format(record)
    assert line.endswith("failed error='ConfigError: REDIS_URL names no host'")
    assert "\n" not in line
