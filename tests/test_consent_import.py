"""`palabre contacts consent-import`: paper consent into the ledger, on every identity of a
number, once per file, and never over a person's later STOP unless told so."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from palabre.cli import main
from palabre.contacts import contact_hasher, contact_key
from palabre.db.database import Database
from palabre.purposes import BROADCAST
from palabre.stores.consent import ConsentLedger

SECRET = "consent-import-test-secret-" + "1" * 32
NUMBERS = ("+243810000001", "+243810000002")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no .env of the project's
    monkeypatch.setenv("PALABRE_SECRET", SECRET)
    monkeypatch.setenv("PALABRE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PALABRE_DEFAULT_REGION", "CD")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return tmp_path


def forms(folder: Path, name: str, *numbers: str) -> Path:
    path = folder / name
    path.write_text("address\n" + "\n".join(numbers) + "\n", encoding="utf-8")
    return path


def imported(capsys: pytest.CaptureFixture[str], path: Path, *options: str) -> str:
    assert main(["contacts", "consent-import", str(path), *options]) == 0
    return capsys.readouterr().out


def allows(folder: Path, address: str, channel: str) -> bool:
    async def read() -> bool:
        database = Database(f"sqlite+aiosqlite:///{folder / 'data' / 'palabre.db'}")
        try:
            key = contact_key(contact_hasher(SECRET.encode()), address)
            return await ConsentLedger(database).allows(key, channel, BROADCAST)
        finally:
            await database.aclose()

    return asyncio.run(read())


def stop(folder: Path, address: str, channel: str) -> None:
    async def write() -> None:
        database = Database(f"sqlite+aiosqlite:///{folder / 'data' / 'palabre.db'}")
        try:
            key = contact_key(contact_hasher(SECRET.encode()), address)
            await ConsentLedger(database).record(key, BROADCAST, False, "keyword", channel=channel)
        finally:
            await database.aclose()

    asyncio.run(write())


def test_consent_on_any_channel_reaches_both_identities_once_per_file(env, capsys):
    path = forms(env, "forms.csv", "0810000001", NUMBERS[1])
    assert "granted for 2 of 2 valid lines" in imported(capsys, path, "--note", "paper, 2026")
    for number in NUMBERS:
        assert allows(env, f"tel:{number}", "sms") and allows(env, f"whatsapp:{number}", "whatsapp")
    assert "granted for 0 of 2" in imported(capsys, path), "the same file again adds nothing"


def test_a_channel_import_grants_that_channel_only_and_each_channel_once(env, capsys):
    path = forms(env, "forms.csv", NUMBERS[0])
    assert "granted for 1 of 1" in imported(capsys, path, "--channel", "sms")
    assert not allows(env, f"whatsapp:{NUMBERS[0]}", "whatsapp")
    assert "granted for 1 of 1" in imported(capsys, path, "--channel", "whatsapp")
    assert allows(env, f"whatsapp:{NUMBERS[0]}", "whatsapp") and allows(
        env, f"tel:{NUMBERS[0]}", "sms"
    )


def test_a_paper_form_never_overrides_a_later_stop_unless_told(env, capsys):
    assert "granted for 2" in imported(capsys, forms(env, "sept.csv", *NUMBERS))
    stop(env, f"tel:{NUMBERS[0]}", "sms")
    october = forms(env, "oct.csv", *NUMBERS, "+243810000003")
    said = imported(capsys, october)
    assert "withdrew since (STOP): not granted" in said, said
    assert not allows(env, f"tel:{NUMBERS[0]}", "sms"), "the STOP stands"
    assert allows(env, "tel:+243810000003", "sms"), "the others are granted"
    imported(capsys, october, "--override-withdrawals")
    assert allows(env, f"tel:{NUMBERS[0]}", "sms"), "a newer form, said so, counts"


def test_withdrawals_from_paper(env, capsys):
    imported(capsys, forms(env, "forms.csv", *NUMBERS))
    said = imported(capsys, forms(env, "stops.csv", NUMBERS[1]), "--withdraw")
    assert "withdrawn for 1 of 1" in said
    assert allows(env, f"tel:{NUMBERS[0]}", "sms") and not allows(env, f"tel:{NUMBERS[1]}", "sms")
