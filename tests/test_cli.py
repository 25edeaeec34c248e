"""The `palabre` command, run as a real process the way a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

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
