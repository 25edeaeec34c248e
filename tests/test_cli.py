"""The `palabre` command, run as a real process the way a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import jsonschema
import pytest
import yaml
from tests.serving import start_serve

ROOT = Path(__file__).parent.parent
UIC_ANSWERS = "Bonjour\nMbengue\nIbrahima\n1997\nDA\n1\n"


def palabre(*args: str, stdin: str = "", cwd: Path = ROOT, env: dict | None = None):
    environment = {k: v for k, v in os.environ.items() if not k.endswith("_SECRET")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "palabre.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=60,
    )


def test_chat_prints_the_code_in_french(tmp_path):
    result = palabre(
        "chat",
        "flows/uic.yaml",
        "--lang",
        "fr",
        stdin=UIC_ANSWERS,
        env={"PALABRE_DATA_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert "Votre Code d'Identification Unique est MBEIBR7DA1." in result.stdout
    assert "1/5 Quelles sont les 3 premières lettres de votre nom de famille ?" in result.stdout
    assert "development secret" in result.stderr
    saved = list(tmp_path.glob("image-*.png"))
    assert len(saved) == 1, "the QR code of the code is saved where the chat says"
    assert f"[image saved to {saved[0]}]" in result.stdout


def test_chat_in_english_and_arabic_shows_translated_prompts(tmp_path):
    english = palabre(
        "chat",
        "flows/uic.yaml",
        "--lang",
        "en",
        stdin=UIC_ANSWERS,
        env={"PALABRE_DATA_DIR": str(tmp_path)},
    )
    arabic = palabre(
        "chat",
        "flows/uic.yaml",
        "--lang",
        "ar",
        stdin=UIC_ANSWERS,
        env={"PALABRE_DATA_DIR": str(tmp_path)},
    )
    assert "1/5 What are the first 3 letters of your last name?" in english.stdout
    assert "1/5 ما هي الأحرف الثلاثة الأولى من اسم عائلتك؟" in arabic.stdout
    assert "MBEIBR7DA1" in arabic.stdout


def test_chat_logs_no_personal_data(tmp_path):
    result = palabre(
        "chat",
        "flows/uic.yaml",
        "--lang",
        "fr",
        "--contact",
        "+243899999999",
        stdin=UIC_ANSWERS,
        env={"PALABRE_DATA_DIR": str(tmp_path), "PALABRE_LOG_LEVEL": "DEBUG"},
    )
    for secret in ("+243899999999", "Mbengue", "Ibrahima", "MBEIBR7DA1"):
        assert secret not in result.stderr


def test_chat_with_a_broken_flow_reports_the_location_without_a_traceback(tmp_path):
    flow = tmp_path / "broken.yaml"
    flow.write_text("id: broken\nsteps:\n  a: {kind: say, text: hi, next: nowhere}\n")
    result = palabre("chat", str(flow), stdin="hi\n")
    assert result.returncode == 1
    assert f"{flow}:3:34: steps.a.next: unknown step 'nowhere' (known: a)" in result.stdout
    assert "Traceback" not in result.stderr


def test_plugins_lists_the_builtins_and_their_actions():
    result = palabre("plugins")
    assert result.returncode == 0
    assert "builtins" in result.stdout
    assert "action registry.remember" in result.stdout


def test_the_committed_schema_is_current_and_accepts_the_shipped_flows():
    printed = json.loads(palabre("schema").stdout)
    committed = json.loads((ROOT / "flows" / "flow.schema.json").read_text())
    assert printed == committed, "run: palabre schema > flows/flow.schema.json"
    for flow in (ROOT / "flows").glob("*.yaml"):
        jsonschema.validate(yaml.safe_load(flow.read_text()), printed)


def test_the_schema_rejects_what_check_rejects():
    schema = json.loads(palabre("schema").stdout)
    bad = {"id": "x", "steps": {"a": {"kind": "say", "txt": "typo"}}}
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(bad)), "an unknown key must be underlined in the editor"


def test_i18n_stats_reports_every_locale_fully_translated():
    result = palabre("i18n", "stats")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        line for line in result.stdout.splitlines() if "100.0% translated" in line
    ]
    assert len(result.stdout.splitlines()) == 3


# -- wording and start-up of the command itself -------------------------------------


def without_settings() -> dict[str, str]:
    """This process's environment without any Palabre or provider setting."""
    prefixes = ("PALABRE_", "TWILIO_", "META_", "DHIS2_", "REDIS_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def test_disabled_plugins_are_read_from_dotenv(tmp_path):
    (tmp_path / ".env").write_text("PALABRE_DISABLE_PLUGINS=qr,dhis2\n")
    command = [sys.executable, "-m", "palabre.cli", "plugins"]
    run = subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, env=without_settings(), timeout=60
    )
    assert run.returncode == 0, run.stderr
    loaded = {line.split()[0] for line in run.stdout.splitlines() if not line.startswith(" ")}
    assert {"builtins", "twilio"} <= loaded
    assert not {"qr", "dhis2"} & loaded, "PALABRE_DISABLE_PLUGINS in .env must block them"
    assert "action dhis2.find" not in run.stdout


def test_chat_into_a_reader_that_stops_early_ends_without_a_traceback(tmp_path):
    """`palabre chat flows/uic.yaml | head -1`, with head gone before chat writes again."""
    command = [sys.executable, "-m", "palabre.cli", "chat", "flows/uic.yaml", "--lang", "fr"]
    env = {**without_settings(), "PALABRE_DATA_DIR": str(tmp_path)}
    chat = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    head = subprocess.Popen(["head", "-1"], stdin=chat.stdout, stdout=subprocess.PIPE)
    assert chat.stdin is not None and chat.stdout is not None
    chat.stdout.close()  # head holds the only reading end now
    chat.stdin.write(b"Bonjour\n")
    chat.stdin.flush()
    first, _ = head.communicate(timeout=60)  # head read one line and exited
    assert first.decode().startswith("> Bonjour")
    _, err = chat.communicate(UIC_ANSWERS.encode(), timeout=60)  # chat writes into a closed pipe
    assert "Traceback" not in err.decode(), err.decode()
    assert "BrokenPipeError" not in err.decode()
    assert chat.returncode in (0, 141)


def test_an_unknown_log_level_is_one_line_not_a_traceback(tmp_path):
    env = {"PALABRE_DATA_DIR": str(tmp_path), "PALABRE_LOG_LEVEL": "LOUD"}
    result = palabre("chat", "flows/uic.yaml", stdin="Bonjour\n", env=env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "palabre: PALABRE_LOG_LEVEL='LOUD' is not a log level" in result.stderr


def test_check_counts_a_catalog_problem_as_an_error_not_minus_one_warning(tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "hello.yaml").write_text("id: hello\nsteps:\n  a: {kind: say, text: Hello}\n")
    catalog = tmp_path / "locales" / "fr" / "LC_MESSAGES" / "messages.po"
    catalog.parent.mkdir(parents=True)
    catalog.write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n"Language: fr\\n"\n\n'
        'msgid "Hello"\nmsgstr "Bonjour {{ nom }}"\n',
        encoding="utf-8",
    )
    result = palabre("check", str(flows))
    assert "the translation uses {{ nom }}" in result.stdout
    assert result.returncode == 1
    errors = len(result.stdout.splitlines())  # flow and catalog problems, none a warning
    assert errors >= 2
    assert f"1 flow file(s) checked: {errors} error(s), 0 warning(s)" in result.stderr


def test_serve_prints_the_banner_once_and_the_address_to_open(tmp_path):
    env = {"PALABRE_DISABLE_PLUGINS": "meta_cloud", "PALABRE_LOG_LEVEL": ""}
    served = start_serve(tmp_path, env, args=("--insecure-dev",))
    err = served.stop()
    assert "Traceback" not in err
    banners = [line for line in err.splitlines() if line.startswith("palabre: INSECURE DEV")]
    assert len(banners) == 1, err
    # every dev-mode warning once: the trial start before uvicorn's must not repeat them
    warnings = [line.split(" ", 1)[1] for line in err.splitlines() if "INSECURE" in line]
    assert len(warnings) == len(set(warnings)), err
    assert f"palabre: serving on {served.url}/ (simulator at /)" in err


@pytest.mark.parametrize(("level", "info_shown"), [("", True), ("WARNING", False)])
def test_serve_honours_the_log_level_given(tmp_path, level, info_shown):
    env = {"PALABRE_DISABLE_PLUGINS": "meta_cloud", "PALABRE_LOG_LEVEL": level}
    served = start_serve(tmp_path, env, args=("--insecure-dev",))
    try:
        form = {"MessageSid": "SM" + "1" * 32, "From": "+243810000001", "Body": "Bonjour"}
        response = httpx.post(f"{served.url}/twilio", data={**form, "To": "+15005550006"})
        assert response.status_code == 200
    finally:
        err = served.stop()
    assert ("twilio message received" in err) is info_shown, err
    assert "INSECURE DEV MODE: TWILIO_AUTH_TOKEN is not set" in err  # WARNING is still shown
