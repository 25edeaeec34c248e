"""`palabre doctor`: what would stop Palabre (`error:`) or hamper it (`note:`), starting nothing.

The command runs in a subprocess with a crafted environment (nothing inherited from the
developer's shell but PATH and Python's own), from an empty working folder so that no
`.env` leaks in, as `palabre serve`'s refusals are tested.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from palabre.config import Settings
from palabre.doctor import examine
from palabre.hookspecs import hookimpl
from palabre.plugins import make_plugin_manager

ROOT = Path(__file__).parent.parent
FLOWS = str(ROOT / "flows")
SETTING_PREFIXES = ("PALABRE_", "TWILIO_", "META_", "DHIS2_", "REDIS_", "DATABASE_")
PRODUCTION = {
    "PALABRE_SECRET": "3f" * 32,
    "PALABRE_DISABLE_PLUGINS": "meta_cloud",
    "PALABRE_PUBLIC_URL": "https://bot.example.org",
    "TWILIO_AUTH_TOKEN": "0123456789abcdef" * 2,
    "TWILIO_ACCOUNT_SID": "AC" + "0123456789abcdef" * 2,
    "TWILIO_WHATSAPP_FROM": "whatsapp:+243812345678",
}
SANDBOX_NOTE = "Twilio's WhatsApp sandbox"


def palabre(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `palabre <args>` with only `env` (plus the interpreter's needs) as its settings."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
    inherited = {k: v for k, v in inherited.items() if not k.endswith(("_SECRET", "_TOKEN"))}
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "palabre.cli", *args],
        capture_output=True,
        text=True,
        cwd=workdir,
        env={**inherited, "PALABRE_DATA_DIR": str(tmp_path / "data"), **env},
        timeout=60,
    )


def doctor(tmp_path: Path, **changes: str) -> tuple[int, list[str]]:
    """The exit status and stdout lines of `palabre doctor` on PRODUCTION with `changes`,
    after checking that it ended cleanly and said every line as an error or a note."""
    result = palabre(tmp_path, {**PRODUCTION, **changes}, "doctor", "--flows", FLOWS)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stdout.splitlines()
    said = [line for line in lines if line.startswith(("error: ", "note: "))]
    assert said == lines or lines == ["no problem found"], result.stdout
    return result.returncode, lines


def errors(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("error: ")]


def notes(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("note: ")]


# -- Twilio's WhatsApp sandbox -----------------------------------------------------------


@pytest.mark.parametrize("sender", ["whatsapp:+14155238886", "+14155238886"])
def test_a_sandbox_sender_is_a_note_with_the_join_rules(tmp_path, sender):
    status, lines = doctor(tmp_path, TWILIO_WHATSAPP_FROM=sender)
    assert status == 0, lines
    assert errors(lines) == []
    sandbox = [line for line in notes(lines) if SANDBOX_NOTE in line]
    assert len(sandbox) == 1, lines
    for said in (
        "Twilio's WhatsApp sandbox (+14155238886)",
        "send `join <your sandbox code>` to +14155238886",
        "lapses 3 days",
        "join again",
        "63015, which is final and never retried",
        "approved",
    ):
        assert said in sandbox[0], f"the sandbox note should say {said!r}"


def test_an_approved_sender_has_no_sandbox_note(tmp_path):
    status, lines = doctor(tmp_path)
    assert status == 0, lines
    assert not [line for line in lines if SANDBOX_NOTE in line], lines


def test_a_twilio_sender_without_a_public_url_is_told_status_callbacks_are_off(tmp_path):
    without = dict(PRODUCTION, PALABRE_PUBLIC_URL="")
    lines = palabre(tmp_path, without, "doctor", "--flows", FLOWS).stdout.splitlines()
    assert [line for line in notes(lines) if "PALABRE_PUBLIC_URL is not set" in line], lines
    _, lines = doctor(tmp_path)
    assert not [line for line in lines if "PALABRE_PUBLIC_URL" in line], lines


# -- errors: what `palabre serve` would refuse to start on ------------------------------------


def test_a_malformed_setting_is_an_error_and_exit_status_1(tmp_path):
    status, lines = doctor(tmp_path, PALABRE_RATE_TWILIO_SMS="fast")
    assert status == 1
    assert errors(lines) == [
        "error: PALABRE_RATE_TWILIO_SMS='fast' is not a rate: write it like 80/second, "
        "20/minute or 10 per 6 seconds"
    ]


def test_an_unreachable_database_is_an_error_without_a_traceback_or_its_password(tmp_path):
    status, lines = doctor(tmp_path, DATABASE_URL="postgresql://u:hunter2@127.0.0.1:9/db")
    assert status == 1
    [line] = errors(lines)
    assert line.startswith("error: the database at postgresql://u:***@127.0.0.1:9/db is unavail")
    assert "hunter2" not in "\n".join(lines)


def test_a_database_behind_the_code_is_an_error_naming_the_upgrade(tmp_path):
    env = {**PRODUCTION, "PALABRE_DISABLE_PLUGINS": "meta_cloud,twilio"}
    assert palabre(tmp_path, env, "db", "upgrade").returncode == 0
    assert doctor(tmp_path, PALABRE_DISABLE_PLUGINS="meta_cloud,twilio") == (
        0,
        ["no problem found"],
    )
    with_sqlite(tmp_path / "data" / "palabre.db", "UPDATE alembic_version SET version_num='0001'")
    status, lines = doctor(tmp_path)
    assert status == 1
    [line] = errors(lines)
    assert "is at schema 0001, behind this Palabre" in line
    assert "run `palabre db upgrade`" in line


def with_sqlite(path: Path, statement: str) -> None:
    import sqlite3

    connection = sqlite3.connect(path)
    with connection:
        connection.execute(statement)
    connection.close()


def test_a_data_dir_that_is_a_file_is_one_error_not_a_traceback(tmp_path):
    file = tmp_path / "a-file"
    file.write_text("not a folder")
    status, lines = doctor(tmp_path, PALABRE_DATA_DIR=str(file))
    assert status == 1
    [line] = errors(lines)
    assert "is not a folder Palabre can use" in line


def test_a_flows_folder_with_no_flow_is_an_error(tmp_path):
    result = palabre(tmp_path, PRODUCTION, "doctor", "--flows", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert f"error: no flow file found in {tmp_path / 'nowhere'}" in result.stdout


# -- it starts nothing and creates nothing ---------------------------------------------


def test_the_doctor_creates_no_database(tmp_path):
    status, lines = doctor(tmp_path)
    assert status == 0
    assert not (tmp_path / "data" / "palabre.db").exists()
    assert notes(lines) == [
        f"note: the embedded database {tmp_path / 'data' / 'palabre.db'} does not exist yet: "
        "`palabre serve` will create it at the current schema"
    ]


# -- the doctor_notes hook -------------------------------------------------------------


class Trial:
    """A scratch plugin with a note, and no error, about its own setting."""

    @hookimpl
    def doctor_notes(self, settings):
        return (
            ["TRIAL_MODE is on: messages go to the test numbers only"]
            if settings.option("TRIAL_MODE")
            else []
        )


def test_plugins_add_notes_through_doctor_notes_and_notes_are_not_errors(tmp_path):
    manager = make_plugin_manager([Trial()], entry_points=False)
    settings = Settings(data_dir=tmp_path, secrets={"PALABRE_SECRET": "3f" * 32})
    settings.options["TRIAL_MODE"] = "on"
    found = examine(settings, manager, FLOWS)
    assert found.errors == []
    assert "TRIAL_MODE is on: messages go to the test numbers only" in found.notes
