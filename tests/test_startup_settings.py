"""`palabre serve` checks every setting at start: one clear line each, all at once, exit 2.

The refusals run the real command in a subprocess with a crafted environment (nothing
inherited from the developer's shell but PATH and Python's own), from an empty working
folder so that no `.env` leaks in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from palabre.config import Settings
from palabre.hookspecs import hookimpl
from palabre.plugins import make_plugin_manager
from palabre.serve import startup_problems

ROOT = Path(__file__).parent.parent
UIC = str(ROOT / "flows" / "uic.yaml")
GOOD_SECRET = "3f" * 32
TWILIO_TOKEN = "0123456789abcdef" * 2
TWILIO_SID = "AC" + "0123456789abcdef" * 2
SETTING_PREFIXES = ("PALABRE_", "TWILIO_", "META_", "DHIS2_", "REDIS_")


def serve(
    tmp_path: Path, env: dict[str, str], *args: str, flows: str = UIC
) -> subprocess.CompletedProcess[str]:
    """Run `palabre serve` with only `env` (plus the interpreter's needs) as its settings."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
    inherited = {k: v for k, v in inherited.items() if not k.endswith(("_SECRET", "_TOKEN"))}
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "palabre.cli", "serve", "--flows", flows, "--port", "1", *args],
        capture_output=True,
        text=True,
        cwd=workdir,
        env={**inherited, "PALABRE_DATA_DIR": str(tmp_path / "data"), **env},
        timeout=60,
    )


def refused(tmp_path: Path, env: dict[str, str], *args: str) -> list[str]:
    """The lines `serve` refused with, after checking it refused cleanly."""
    result = serve(tmp_path, env, *args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert all(line.startswith("palabre: ") for line in lines), result.stderr
    return lines


def base_env(**changes: str) -> dict[str, str]:
    """A valid production environment with Twilio and DHIS-2 on, Meta off."""
    env = {
        "PALABRE_SECRET": GOOD_SECRET,
        "PALABRE_DISABLE_PLUGINS": "meta_cloud",
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "TWILIO_ACCOUNT_SID": TWILIO_SID,
        "DHIS2_URL": "https://dhis2.example.org",
        "DHIS2_TOKEN": "d2pat_" + "a1" * 20,
    }
    return {**env, **changes}


# -- each malformed setting is one clear line -------------------------------------------

ONE_BAD_SETTING = [
    ("PALABRE_SECRET", "q", "PALABRE_SECRET is too short: it needs at least 32 characters"),
    ("PALABRE_SECRET", "changeme" * 5, "PALABRE_SECRET looks like a placeholder"),
    ("PALABRE_SECRET", "0" * 64, "PALABRE_SECRET looks like a placeholder"),
    ("REDIS_URL", "http://localhost:6379", "REDIS_URL must start with redis://, rediss://"),
    ("REDIS_URL", "localhost:6379", "REDIS_URL must start with redis://, rediss://"),
    ("REDIS_URL", "redis://localhost:port/0", "REDIS_URL is malformed: Port could not be"),
    ("REDIS_URL", "redis://localhost:6379/zero", "REDIS_URL's database must be a number"),
    ("REDIS_URL", "unix://", "REDIS_URL names no socket path"),
    ("PALABRE_SESSION_TTL", "abc", "PALABRE_SESSION_TTL='abc' is not a whole number"),
    ("PALABRE_SESSION_TTL", "0", "PALABRE_SESSION_TTL must be at least 1 second"),
    ("PALABRE_SESSION_TTL", "-5", "PALABRE_SESSION_TTL='-5' is not a whole number"),
    ("PALABRE_SESSION_TTL", "259201", "PALABRE_SESSION_TTL=259201 is over 259200 (72 hours)"),
    ("PALABRE_LOG_LEVEL", "LOUD", "PALABRE_LOG_LEVEL='LOUD' is not a log level"),
    ("PALABRE_PUBLIC_URL", "bot.example.org", "PALABRE_PUBLIC_URL='bot.example.org' is not"),
    ("PALABRE_PUBLIC_URL", "ftp://bot.example.org", "is not an absolute http(s) URL"),
    ("PALABRE_SIMULATOR", "maybe", "PALABRE_SIMULATOR='maybe' is not true or false"),
    ("PALABRE_DISABLE_PLUGINS", "meta_cloud,shout", "names 'shout', which is not an installed"),
    ("DHIS2_TIMEOUT", "abc", "DHIS2_TIMEOUT='abc' is not a number of seconds"),
    ("DHIS2_URL", "dhis2.example.org", "DHIS2_URL='dhis2.example.org' is not an absolute"),
    ("DHIS2_VERSION", "next", "DHIS2_VERSION='next' is not a DHIS-2 version"),
    ("TWILIO_AUTH_TOKEN", "your_auth_token", "TWILIO_AUTH_TOKEN looks like a placeholder"),
    ("TWILIO_AUTH_TOKEN", "abc123", "TWILIO_AUTH_TOKEN is too short: it needs at least 32"),
    ("TWILIO_ACCOUNT_SID", "AC123", "TWILIO_ACCOUNT_SID must be an Account SID starting with"),
]


@pytest.mark.parametrize(("name", "value", "expected"), ONE_BAD_SETTING)
def test_a_malformed_setting_is_one_clear_line_and_exit_status_2(tmp_path, name, value, expected):
    lines = refused(tmp_path, base_env(**{name: value}))
    assert len(lines) == 1, lines
    assert expected in lines[0]
    if name.endswith(("_SECRET", "_TOKEN")):
        assert value not in lines[0], "a secret is never repeated"


def test_meta_credentials_get_checks_of_their_own(tmp_path):
    env = base_env(
        PALABRE_DISABLE_PLUGINS="",
        META_APP_SECRET="tiny",
        META_VERIFY_TOKEN="<verify token>",
        META_ACCESS_TOKEN="EAA" + "x1" * 40,
        META_PHONE_NUMBER_ID="+243810000001",
        META_GRAPH_VERSION="21",
    )
    lines = refused(tmp_path, env)
    assert any("META_APP_SECRET is too short: it needs at least 32" in line for line in lines)
    assert any("META_VERIFY_TOKEN looks like a placeholder" in line for line in lines)
    assert any("META_PHONE_NUMBER_ID must be the numeric Phone number ID" in line for line in lines)
    assert any("META_GRAPH_VERSION='21' is not a Graph API version" in line for line in lines)
    assert len(lines) == 4, lines
    assert "+243810000001" not in "\n".join(lines)


def test_every_problem_is_listed_at_once(tmp_path):
    env = base_env(
        PALABRE_SECRET="short",
        REDIS_URL="http://localhost:6379",
        PALABRE_SESSION_TTL="abc",
        PALABRE_LOG_LEVEL="LOUD",
        PALABRE_PUBLIC_URL="bot.example.org",
        PALABRE_SIMULATOR="maybe",
        DHIS2_TIMEOUT="abc",
        TWILIO_AUTH_TOKEN="changeme",
    )
    lines = refused(tmp_path, env)
    for name in (
        "PALABRE_SECRET",
        "REDIS_URL",
        "PALABRE_SESSION_TTL",
        "PALABRE_LOG_LEVEL",
        "PALABRE_PUBLIC_URL",
        "PALABRE_SIMULATOR",
        "DHIS2_TIMEOUT",
        "TWILIO_AUTH_TOKEN",
    ):
        assert sum(f"{name} " in line or f"{name}=" in line for line in lines) == 1, name
    assert len(lines) == 8, lines


# -- secrets ---------------------------------------------------------------------------


def test_palabre_dev_no_longer_skips_the_secret_and_says_it_is_ignored(tmp_path):
    env = {"PALABRE_DEV": "1", "PALABRE_DISABLE_PLUGINS": "twilio,meta_cloud"}
    lines = refused(tmp_path, env)
    assert lines[0].startswith("palabre: PALABRE_DEV is ignored")
    assert "--insecure-dev" in lines[0]
    (missing,) = [line for line in lines if "PALABRE_SECRET is not set" in line]
    assert "`palabre serve --insecure-dev`" in missing
    assert "--dev " not in missing and "--dev)" not in missing


def test_insecure_dev_allows_a_missing_secret_but_not_a_malformed_one(tmp_path):
    env = {"PALABRE_SECRET": "short", "PALABRE_DISABLE_PLUGINS": "twilio,meta_cloud"}
    lines = refused(tmp_path, env, "--insecure-dev")
    assert any("PALABRE_SECRET is too short" in line for line in lines)
    assert "generate one with" in "\n".join(lines)
    assert 'python3 -c "import secrets; print(secrets.token_hex(32))"' in "\n".join(lines)


def test_a_flow_that_names_its_own_secret_needs_it_long_too(tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    text = (ROOT / "flows" / "uic.yaml").read_text(encoding="utf-8")
    assert "secret_env: PALABRE_SECRET" in text
    flow = text.replace("secret_env: PALABRE_SECRET", "secret_env: UIC_SECRET", 1)
    (flows / "uic.yaml").write_text(flow, encoding="utf-8")
    env = base_env(UIC_SECRET="too-short", PALABRE_DISABLE_PLUGINS="twilio,meta_cloud")
    result = serve(tmp_path, env, flows=str(flows))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "UIC_SECRET is too short: it needs at least 32 characters" in result.stderr


# -- in-process: the constructor checks nothing; plugins add their own lines ------------


def test_settings_built_in_python_keep_short_test_secrets():
    settings = Settings(secrets={"PALABRE_SECRET": "s"})
    assert settings.secret("PALABRE_SECRET") == b"s"
    assert settings.problems() == [
        "PALABRE_SECRET is too short: it needs at least 32 characters: generate one with "
        'python3 -c "import secrets; print(secrets.token_hex(32))"'
    ]


def test_reading_a_malformed_environment_never_raises():
    settings = Settings.from_env(
        {"PALABRE_SESSION_TTL": "abc", "PALABRE_LOG_LEVEL": "LOUD"}, env_file=None
    )
    assert settings.session_ttl == 72 * 3600
    assert len(settings.problems()) == 3  # the TTL, the level, and PALABRE_SECRET unset


class Strict:
    """A plugin that checks a setting of its own."""

    @hookimpl
    def check_settings(self, settings):
        return [] if settings.option("STRICT_MODE") else ["STRICT_MODE is not set"]


def test_plugins_add_their_lines_through_check_settings():
    manager = make_plugin_manager([Strict()], entry_points=False)
    settings = Settings(secrets={"PALABRE_SECRET": GOOD_SECRET})
    assert startup_problems(settings, manager, []) == ["STRICT_MODE is not set"]
    settings.options["STRICT_MODE"] = "on"
    assert startup_problems(settings, manager, []) == []
