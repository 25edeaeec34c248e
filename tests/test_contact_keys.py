"""Contact keys come from PALABRE_SECRET alone: stable across flows, restarts and workers."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import pytest

from palabre.bootstrap import build_engine
from palabre.config import Settings
from palabre.errors import ConfigError
from palabre.runtime.messages import Inbound

UIC = Path(__file__).parent.parent / "flows" / "uic.yaml"
SECRET = "contact-keys-test-secret-" + "0" * 32
PHONE = "whatsapp:+243810000001"


def first_flow(tmp_path: Path) -> Path:
    """A flow that needs no secret and sorts before uic.yaml."""
    path = tmp_path / "aaa.yaml"
    path.write_text(
        textwrap.dedent("""\
        id: aaa
        settings: {locales: [en], default_locale: en}
        steps:
          bye: {kind: end, text: "bye"}
    """)
    )
    return path


def engine(paths: list[Path], tmp_path: Path, secret: str = SECRET):
    settings = Settings(data_dir=tmp_path / "data", secrets={"PALABRE_SECRET": secret})
    return build_engine(paths, settings)


@pytest.mark.anyio
async def test_a_contact_keeps_its_key_whatever_the_flows_and_after_a_restart(tmp_path):
    before = engine([UIC], tmp_path)
    after_restart_with_a_new_first_flow = engine([first_flow(tmp_path), UIC], tmp_path)
    other_deployment = engine([UIC], tmp_path, secret="another-secret-" + "1" * 32)
    try:
        key = before.contact_key(PHONE)
        assert after_restart_with_a_new_first_flow.contact_key(PHONE) == key
        assert other_deployment.contact_key(PHONE) != key, "keyed by the deployment secret"
        assert before.contact_key("whatsapp:+243810000002") != key
        assert "243810000001" not in key
    finally:
        for opened in (before, after_restart_with_a_new_first_flow, other_deployment):
            await opened.aclose()


@pytest.mark.anyio
async def test_an_opt_out_keeps_applying_after_a_restart_with_another_flow_first(tmp_path):
    first = engine([UIC], tmp_path)
    await first.stores.consent.record(first.contact_key(PHONE), "service", False, "provider")
    await first.aclose()
    restarted = engine([first_flow(tmp_path), UIC], tmp_path)
    try:
        key = restarted.contact_key(PHONE)
        assert not await restarted.stores.consent.allows(key, "whatsapp", "service")
    finally:
        await restarted.aclose()


@pytest.mark.anyio
async def test_the_embedded_session_store_holds_no_phone_number(tmp_path):
    opened = engine([UIC], tmp_path)
    try:
        for i, text in enumerate(["Bonjour", "Mbengue"]):
            await opened.handle(Inbound(PHONE, text, message_id=f"SM{i}"))
    finally:
        await opened.aclose()
    with sqlite3.connect(tmp_path / "data" / "sessions.db") as conn:
        rows = conn.execute("SELECT contact, data FROM sessions").fetchall()
        seen = conn.execute("SELECT message_id FROM seen").fetchall()
    assert len(rows) == 1 and len(seen) == 2
    assert all("243810000001" not in f"{row}" for row in rows + seen)


def test_an_engine_needs_palabre_secret(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", secrets={})
    with pytest.raises(ConfigError, match="PALABRE_SECRET is not set"):
        build_engine([first_flow(tmp_path)], settings)
