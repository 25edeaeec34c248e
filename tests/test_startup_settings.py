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
from palabre.errors import ConfigError
from palabre.hookspecs import hookimpl
from palabre.plugins import make_plugin_manager
from palabre.serve import startup_problems
from palabre_dhis2.config import Dhis2Config
from palabre_dhis2.register import BUDGET_SECONDS as BUDGET
from palabre_twilio.config import TwilioConfig

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
    # Numbers must be finite and in range: nan and inf pass float(), 400 nines overflow to inf.
    ("DHIS2_TIMEOUT", "nan", "DHIS2_TIMEOUT='nan' is not a number of seconds"),
    ("DHIS2_TIMEOUT", "inf", "DHIS2_TIMEOUT='inf' is not a number of seconds"),
    ("DHIS2_TIMEOUT", "9" * 400, "DHIS2_TIMEOUT='99999"),
    (
        "DHIS2_TIMEOUT",
        "1e-9",
        f"DHIS2_TIMEOUT must be more than 0.1 and at most {BUDGET:g} seconds",
    ),
    ("DHIS2_TIMEOUT", "0.1", "DHIS2_TIMEOUT must be more than 0.1"),
    ("DHIS2_TIMEOUT", "100000", f"at most {BUDGET:g} seconds (a registration's whole budget)"),
    ("DHIS2_RETRY_DELAYS", "nan", "DHIS2_RETRY_DELAYS='nan' should be at most 5 pauses of 0 to 5"),
    ("DHIS2_RETRY_DELAYS", "inf", "DHIS2_RETRY_DELAYS='inf' should be at most 5 pauses"),
    ("DHIS2_RETRY_DELAYS", "1e9", "DHIS2_RETRY_DELAYS='1e9' should be at most 5 pauses"),
    ("DHIS2_RETRY_DELAYS", "5.5", "DHIS2_RETRY_DELAYS='5.5' should be at most 5 pauses"),
    ("DHIS2_RETRY_DELAYS", ",", "DHIS2_RETRY_DELAYS=',' should be at most 5 pauses"),
    ("DHIS2_RETRY_DELAYS", "0.3,,1", "DHIS2_RETRY_DELAYS='0.3,,1' should be"),
    ("DHIS2_RETRY_DELAYS", "0,0,0,0,0,0", "DHIS2_RETRY_DELAYS='0,0,0,0,0,0' should be at most 5"),
    ("REDIS_URL", "redis://localhost:6379/0?socket_timeout=nan", "socket_timeout must be a finite"),
    ("REDIS_URL", "redis://localhost:6379/" + "9" * 40, "REDIS_URL's database must be a number"),
    ("DATABASE_URL", "postgresql://[::1/palabre", "DATABASE_URL is not a URL"),
    # Huge integers: int() refuses past 4,300 digits.
    ("PALABRE_SESSION_TTL", "9" * 5000, "PALABRE_SESSION_TTL=9999"),
    # Values that passed, then failed at every use.
    ("TWILIO_SMS_FROM", "hello", "TWILIO_SMS_FROM must be the sender's phone number"),
    ("TWILIO_SMS_FROM", "whatsapp:+14155238886", "TWILIO_SMS_FROM must be the sender's phone"),
    ("TWILIO_SMS_FROM", "MG" + "0a" * 16, "TWILIO_SMS_FROM is a Messaging Service SID (MG...)"),
    ("TWILIO_WHATSAPP_FROM", "whatsapp:abc", "TWILIO_WHATSAPP_FROM must be the sender's phone"),
    ("TWILIO_WHATSAPP_FROM", "+9990", "TWILIO_WHATSAPP_FROM must be the sender's phone number"),
    ("PALABRE_PUBLIC_URL", "https://bot example.org", "has a space or a control character"),
    ("PALABRE_PUBLIC_URL", "https://bot.example.org/\x07", "has a space or a control character"),
    ("PALABRE_PUBLIC_URL", "https://ops@bot.example.org", "must not carry a user name or password"),
]


@pytest.mark.parametrize(("name", "value", "expected"), ONE_BAD_SETTING)
def test_a_malformed_setting_is_one_clear_line_and_exit_status_2(tmp_path, name, value, expected):
    lines = refused(tmp_path, base_env(**{name: value}))
    assert len(lines) == 1, lines
    assert expected in lines[0]
    assert len(lines[0]) < 300, "a long value is cut short, so the line stays readable"
    if name.endswith(("_SECRET", "_TOKEN", "_FROM")):
        assert value not in lines[0], "a secret or a phone number is never repeated"


def test_a_url_with_a_password_is_refused_without_repeating_it(tmp_path):
    env = base_env(PALABRE_PUBLIC_URL="https://ops:hunter2-pass@bot.example.org")
    env["DHIS2_URL"] = "https://admin:district-pass@dhis2.example.org:notaport"
    lines = refused(tmp_path, env)
    assert len(lines) == 2, lines
    assert "PALABRE_PUBLIC_URL must not carry a user name or password" in lines[0]
    assert "DHIS2_URL='https://***@dhis2.example.org:notaport' is not an absolute" in lines[1]
    assert "-pass" not in "\n".join(lines) and "ops" not in "\n".join(lines)


def test_a_setting_that_is_not_utf8_is_one_line_not_a_traceback(tmp_path):
    # Bytes that are not UTF-8 reach Python as lone surrogates; encoding them fails later.
    undecodable = os.fsdecode(b"\xff\xfe") + "a1" * 20
    env = base_env(PALABRE_SECRET=undecodable, PALABRE_DISABLE_PLUGINS="twilio,meta_cloud")
    lines = refused(tmp_path, env)
    assert lines == [
        "palabre: PALABRE_SECRET is not valid UTF-8 text: write it again in a UTF-8 "
        "environment or .env"
    ]


# -- the data folder must be one Palabre can create and write ---------------------------


def _proc_path(tmp_path: Path) -> str:
    return "/proc/palabre-nope"  # no one, not even root, can create a folder in /proc


def _a_file(tmp_path: Path) -> str:
    file = tmp_path / "a-file"
    file.write_text("not a folder")
    return str(file)


def _under_a_file(tmp_path: Path) -> str:
    return str(Path(_a_file(tmp_path)) / "data")


@pytest.mark.parametrize(
    ("make_path", "expected"),
    [
        (_proc_path, "cannot be created or written (No such file or directory)"),
        (_a_file, "is not a folder Palabre can use"),
        (_under_a_file, "is not a folder Palabre can use"),
    ],
)
def test_a_data_dir_palabre_cannot_write_is_one_line(tmp_path, make_path, expected):
    path = make_path(tmp_path)
    lines = refused(tmp_path, base_env(PALABRE_DATA_DIR=path))
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"palabre: PALABRE_DATA_DIR={path!r} ")
    assert expected in lines[0]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_data_dir_is_one_line(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o500)
    lines = refused(tmp_path, base_env(PALABRE_DATA_DIR=str(folder / "data")))
    assert len(lines) == 1 and "cannot be created or written (Permission denied)" in lines[0]


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


def test_meta_ids_in_other_scripts_digits_are_refused(tmp_path):
    # isdecimal() and \d take Arabic-Indic digits, which the Graph API's URLs do not.
    env = base_env(
        PALABRE_DISABLE_PLUGINS="",
        META_APP_SECRET="5e" * 16,
        META_VERIFY_TOKEN="verify-" + "7c" * 8,
        META_ACCESS_TOKEN="EAA" + "x1" * 40,
        META_PHONE_NUMBER_ID="\u0661\u0660\u0666\u0665\u0664\u0660",
        META_GRAPH_VERSION="v\u0662\u0661.\u0660",
    )
    lines = refused(tmp_path, env)
    assert len(lines) == 2, lines
    assert "META_PHONE_NUMBER_ID must be the numeric Phone number ID" in lines[0]
    assert "is not a Graph API version such as v21.0" in lines[1]


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


def test_the_readers_never_produce_a_huge_or_non_finite_number():
    huge_ttl = Settings.from_env({"PALABRE_SESSION_TTL": "9" * 5000}, env_file=None)
    assert huge_ttl.session_ttl == 72 * 3600
    for timeout in ("nan", "inf", "-inf", "1e400"):
        settings = Settings(options={"DHIS2_TIMEOUT": timeout})
        with pytest.raises(ConfigError, match="is not a number of seconds"):
            Dhis2Config.from_settings(settings)
    with pytest.raises(ConfigError, match="finite"):
        Dhis2Config(timeout=float("nan"))
    with pytest.raises(ConfigError, match="finite"):
        Dhis2Config(retry_delays=(0.3, float("inf")))


def test_good_values_are_read_in_canonical_form_and_start(tmp_path):
    env = base_env(
        PALABRE_DATA_DIR=str(tmp_path / "new" / "data"),
        PALABRE_PUBLIC_URL=" https://bot.example.org/ ",
        PALABRE_SESSION_TTL="٣٦٠٠",  # 3600 in Arabic-Indic digits
        DHIS2_TIMEOUT=f"{BUDGET:g}",
        DHIS2_RETRY_DELAYS="0, 5, 0.25",
        TWILIO_SMS_FROM="+1 500 555 0006",
        TWILIO_WHATSAPP_FROM="+14155238886",
        REDIS_URL="redis://localhost:6379/15?socket_timeout=2.5",
    )
    settings = Settings.from_env(env, env_file=None)
    manager = make_plugin_manager(disabled=settings.disabled_plugins)
    assert startup_problems(settings, manager, [UIC]) == []
    assert settings.public_url == "https://bot.example.org/"
    assert settings.session_ttl == 3600
    dhis2 = Dhis2Config.from_settings(settings)
    assert (dhis2.timeout, dhis2.retry_delays) == (BUDGET, (0.0, 5.0, 0.25))
    twilio = TwilioConfig.from_settings(settings)
    assert (twilio.sms_from, twilio.whatsapp_from) == ("+15005550006", "whatsapp:+14155238886")
    assert not (tmp_path / "new").exists(), "checking the data folder leaves nothing behind"


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
