"""`palabre dhis2 ping`: the server's version and the signed-in user, or a clear failure.

The fake DHIS-2 and the helpers these tests share are in `tests/dhis2_fakes.py`.
"""

from __future__ import annotations

import pytest
from tests.conftest import free_port
from tests.dhis2_fakes import TOKEN, USER, fake

from palabre import cli
from palabre.plugins import make_plugin_manager

__all__ = ["fake"]  # fixtures from tests/dhis2_fakes.py


@pytest.fixture
def dhis2_env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("DHIS2_USERNAME", "DHIS2_PASSWORD", "DHIS2_TOKEN", "DHIS2_VERSION", "DHIS2_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_ping_prints_the_version_and_the_user(fake, dhis2_env, capsys):
    dhis2_env.setenv("DHIS2_URL", fake.url)
    dhis2_env.setenv("DHIS2_TOKEN", TOKEN)
    assert cli.main(["dhis2", "ping"], plugins=make_plugin_manager()) == 0
    assert capsys.readouterr().out == f"DHIS-2 2.41.1 at {fake.url}: signed in as admin\n"
    assert [r.path for r in fake.requests] == ["/api/system/info", "/api/me"]


def test_ping_with_bad_credentials_exits_1(fake, dhis2_env, capsys):
    dhis2_env.setenv("DHIS2_URL", fake.url)
    dhis2_env.setenv("DHIS2_USERNAME", USER)
    dhis2_env.setenv("DHIS2_PASSWORD", "wrong")
    assert cli.main(["dhis2", "ping"], plugins=make_plugin_manager()) == 1
    err = capsys.readouterr().err
    assert "HTTP 401" in err and "DHIS2_USERNAME and DHIS2_PASSWORD" in err
    assert "wrong" not in err


def test_ping_warns_about_a_version_on_the_wrong_side_of_the_renames(fake, dhis2_env, capsys):
    fake.version = "2.42"
    dhis2_env.setenv("DHIS2_URL", fake.url)
    dhis2_env.setenv("DHIS2_TOKEN", TOKEN)
    dhis2_env.setenv("DHIS2_VERSION", "2.40")
    assert cli.main(["dhis2", "ping"], plugins=make_plugin_manager()) == 1
    assert "set DHIS2_VERSION=2.42" in capsys.readouterr().err


def test_ping_without_a_url_or_with_the_server_down(dhis2_env, capsys):
    assert cli.main(["dhis2", "ping"], plugins=make_plugin_manager()) == 2
    assert "DHIS2_URL is not set" in capsys.readouterr().err
    dhis2_env.setenv("DHIS2_URL", f"http://127.0.0.1:{free_port()}")
    assert cli.main(["dhis2", "ping"], plugins=make_plugin_manager()) == 1
    assert "did not answer GET /api/system/info (ConnectError)" in capsys.readouterr().err
