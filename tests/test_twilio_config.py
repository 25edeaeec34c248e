"""What the Twilio plugin needs to start: its auth token and account SID, its SDK (an
extra, named when missing), and its entry point.

The fakes and helpers these tests share are in `tests/twilio_fakes.py`.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from tests.twilio_fakes import app_for, settings_for

from palabre.errors import ConfigError
from palabre.plugins import make_plugin_manager
from palabre_twilio import TwilioTransport
from palabre_twilio.config import load_sdk


@pytest.mark.anyio
async def test_without_the_auth_token_the_app_refuses_to_start(tmp_path):
    app = app_for(settings_for(tmp_path, token=None))
    with pytest.raises(ConfigError, match=r"TWILIO_AUTH_TOKEN.*--insecure-dev"):
        async with app.router.lifespan_context(app):
            pass


@pytest.mark.anyio
async def test_a_malformed_account_sid_is_refused(tmp_path):
    app = app_for(settings_for(tmp_path, TWILIO_ACCOUNT_SID="SK123"))
    with pytest.raises(ConfigError, match="starting with AC"):
        async with app.router.lifespan_context(app):
            pass


def test_the_module_imports_without_the_sdk_and_names_the_extra(monkeypatch):
    code = "import sys; sys.modules['twilio'] = None; import palabre_twilio; print('ok')"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stdout.strip() == "ok", run.stderr
    monkeypatch.setitem(sys.modules, "twilio.request_validator", None)
    with pytest.raises(ConfigError, match=r"pip install 'palabre\[twilio\]'"):
        load_sdk("twilio.request_validator")


def test_the_plugin_is_registered_by_its_entry_point():
    manager = make_plugin_manager()
    transports = [t for batch in manager.hook.register_transports() for t in batch]
    assert any(isinstance(t, TwilioTransport) for t in transports)
