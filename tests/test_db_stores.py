"""The durable stores' contract, on the embedded SQLite file and on a real PostgreSQL server.

Every test runs twice: `sqlite` (the default, no server) and `postgresql` (the server
tests/conftest.py starts, as it starts Redis). "Atomic across connections" is tested
with two `Database` objects, each with its own connection pool, as two workers have.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.db_fixtures import SECRET, Clock, clock, open_database, stores, url

from palabre.db import migrate
from palabre.db.database import Database
from palabre.errors import StoreError, StoreUnavailable
from palabre.stores.bundle import Stores
from palabre.stores.media import DEFAULT_TTL

ROOT = Path(__file__).parent.parent
__all__ = ["clock", "stores", "url"]  # fixtures, shared in tests/db_fixtures.py
SERVE_SECRET = "5f0c2a9e4b7d41e3a8c6d2f1b9e07a4c3d5e6f708192a3b4"


@pytest.fixture
async def other(stores: Stores, url: str, clock: Clock) -> AsyncIterator[Stores]:
    """The same database through a second engine: another worker."""
    opened = Stores.on(open_database(url), SECRET, clock)
    yield opened
    await opened.aclose()


# -- registry ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_registry_add_is_once_per_namespace_and_durable(stores, url, clock):
    registry = stores.registry
    assert await registry.add("uic", "ab12") is True
    assert await registry.add("uic", "ab12") is False
    assert await registry.add("other", "ab12") is True
    assert not await registry.contains("uic", "cd34")
    await stores.aclose()
    reopened = Stores.on(open_database(url), SECRET, clock)
    try:
        assert await reopened.registry.contains("uic", "ab12")
        assert await reopened.registry.add("uic", "ab12") is False
    finally:
        await reopened.aclose()


@pytest.mark.anyio
async def test_the_same_claim_finds_its_own_key_new_again(stores):
    """A retried turn (same claim) re-adding its key is still new; anyone else sees it taken."""
    registry = stores.registry
    assert await registry.add("uic", "ab12", claim="turn-1") is True
    assert await registry.add("uic", "ab12", claim="turn-1") is True, "the same turn, retried"
    assert await registry.add("uic", "ab12", claim="turn-2") is False, "another turn"
    assert await registry.add("uic", "ab12") is False, "no claim"


@pytest.mark.anyio
async def test_registry_add_is_atomic_across_connections(stores, other):
    added = await asyncio.gather(*(s.registry.add("uic", "ef56") for s in [stores, other] * 5))
    assert added.count(True) == 1


# -- media -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_media_is_served_by_any_worker_until_it_expires_then_purged(stores, other, clock):
    kept = await stores.media.put(b"\x89PNG kept", "image/png")
    brief = await stores.media.put(b"\x89PNG brief", "image/png", ttl=60)
    token = await stores.media.token(brief)
    assert other.media.verify(token) == brief, "another worker checks the same signature"
    assert await other.media.token(brief) == token, "and signs the same URL from the row"
    assert await other.media.token("unknown") is None
    item = await other.media.get(brief)
    assert (item.data, item.content_type) == (b"\x89PNG brief", "image/png")
    assert (await other.media.get(kept)).expires_at == clock.now + DEFAULT_TTL
    clock.now += 61
    assert other.media.verify(token) is None, "the token expires with its image"
    assert await other.media.get(brief) is None
    assert await stores.media.token(brief) is None
    assert await other.media.token(brief) is None
    assert await other.media.purge() == 1, "only the expired image is deleted"
    assert await stores.media.get(kept) is not None
    assert await stores.media.purge() == 0


@pytest.mark.anyio
async def test_an_altered_media_token_is_refused(stores):
    media_id = await stores.media.put(b"png", "image/png")
    token = await stores.media.token(media_id)
    assert stores.media.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert Stores.on(stores.database, b"another secret").media.verify(token) is None


# -- message log and opt-outs ---------------------------------------------------------------


@pytest.mark.anyio
async def test_message_statuses_only_move_forward_and_failure_is_final(stores):
    log = stores.messages
    await log.sent("SM1", "twilio", "key1", status="queued")
    for state in ("sent", "delivered", "sent", "queued"):
        await log.status("SM1", state)
    assert (await log.get("SM1")).status == "delivered"
    failed = await log.status("SM2", "failed", "30008", channel="twilio", contact_key="key2")
    assert (failed.status, failed.error_code, failed.contact_key) == ("failed", "30008", "key2")
    after = await log.status("SM2", "delivered")
    assert (after.status, after.error_code) == ("failed", "30008"), "failed is final"
    await log.sent("SM2", "twilio", "key2")
    assert (await log.get("SM2")).status == "failed", "a late `sent` changes nothing"
    assert await log.get("SM3") is None


@pytest.mark.anyio
async def test_concurrent_status_callbacks_keep_the_furthest(stores, other):
    states = ["sent", "read", "queued", "delivered", "sending", "accepted"]
    logs = [stores.messages, other.messages]
    await asyncio.gather(*(logs[i % 2].status("SM9", s) for i, s in enumerate(states * 2)))
    assert (await stores.messages.get("SM9")).status == "read"


@pytest.mark.anyio
async def test_an_opt_out_applies_on_every_worker(stores, other):
    assert await other.consent.allows("key1", "sms", "service")
    await stores.consent.record("key1", "service", False, "provider", detail="21610")
    assert not await other.consent.allows("key1", "sms", "service")
    assert await other.consent.allows("key2", "sms", "service")


# -- tasks -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_tasks_are_due_postponed_and_done(stores, other, clock):
    tasks = stores.tasks
    payload = {"value": "MBEIBR7DA1", "program": {"uid": "IpHINAT79UW"}, "n": 1}
    assert await tasks.add("dhis2.register", "t1", payload) is True
    assert await other.tasks.add("dhis2.register", "t1", {"other": True}) is False
    clock.now += 1
    await tasks.add("dhis2.register", "t2", {"value": "KEPT"})
    await tasks.add("other.kind", "t3", {})
    due = await other.tasks.due("dhis2.register")
    assert [(t.id, t.payload, t.attempts) for t in due] == [
        ("t1", payload, 0),
        ("t2", {"value": "KEPT"}, 0),
    ]
    await tasks.postpone("t1", 60, "unavailable")
    assert [t.id for t in await tasks.due("dhis2.register")] == ["t2"]
    clock.now += 60
    second, first = await tasks.due("dhis2.register")  # t1 is now due after t2
    assert (first.id, first.attempts, first.last_error) == ("t1", 1, "unavailable")
    assert (second.id, second.attempts, second.last_error) == ("t2", 0, None)
    await other.tasks.done("t1")
    assert [t.id for t in await tasks.due("dhis2.register")] == ["t2"]
    assert (await tasks.count("dhis2.register"), await tasks.count()) == (1, 2)


@pytest.mark.anyio
async def test_a_done_task_leaves_no_payload_in_the_embedded_file(tmp_path, clock):
    url = f"sqlite:///{tmp_path}/palabre.db"  # PostgreSQL keeps dead rows until VACUUM
    stores = Stores.on(open_database(url), SECRET, clock)
    await stores.tasks.add("dhis2.register", "done", {"value": "MBEIBR7DA1"})
    await stores.tasks.add("dhis2.register", "waiting", {"value": "KEPTCODE42"})
    await stores.tasks.done("done")
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("palabre.db*"))  # WAL included
    await stores.aclose()
    assert b"KEPTCODE42" in stored, "the waiting task is still there"
    assert b"MBEIBR7DA1" not in stored, "the done one is overwritten, not just unlinked"


# -- contacts ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_address_resolves_to_one_contact_made_on_first_sight(stores, other):
    first = await stores.contacts.resolve("hash-a", "whatsapp", "+243810000001")
    assert await other.contacts.resolve("hash-a", "whatsapp", "+243810000001") == first
    assert await stores.contacts.resolve("hash-b", "tel", "+243810000002") != first
    assert await stores.contacts.language(first) is None
    await other.contacts.set_language(first, "fr")
    assert await stores.contacts.language(first) == "fr"


@pytest.mark.anyio
async def test_concurrent_resolves_of_a_new_address_give_one_contact(stores, other):
    for n in range(4):
        ids = await asyncio.gather(
            *(
                s.contacts.resolve(f"new-{n}", "tel", f"+24381000010{n}")
                for s in [stores, other] * 3
            )
        )
        assert len(set(ids)) == 1, f"one contact for one address, got {ids}"
    async with stores.database.read() as conn:
        count = (await conn.exec_driver_sql("SELECT COUNT(*) FROM contacts")).scalar_one()
    assert count == 4, "the losers' new contacts were rolled back"


# -- migrations and the schema check ----------------------------------------------------------


@pytest.mark.anyio
async def test_migrations_run_up_from_an_empty_database(url):
    database = open_database(url)
    try:
        assert await migrate.current(database) is None
        assert await migrate.upgrade(database, "0001") == (None, "0001")
        assert await migrate.upgrade(database) == ("0001", migrate.head())
        assert await migrate.upgrade(database) == (migrate.head(),) * 2, "again: nothing to do"
        await database.prepare()
        await Stores.on(database, SECRET).contacts.resolve("k", "tel", "+243810000001")
    finally:
        await database.aclose()


@pytest.mark.anyio
async def test_a_schema_behind_the_code_is_refused_with_the_command_to_run(url):
    database = open_database(url)
    await migrate.upgrade(database, "0001")
    try:
        with pytest.raises(StoreError, match=r"at schema 0001, behind .*`palabre db upgrade`"):
            await Stores.on(database, SECRET).registry.add("uic", "k")
    finally:
        await database.aclose()


@pytest.mark.anyio
async def test_only_an_empty_embedded_database_is_created_at_the_head(url):
    database = open_database(url)
    try:
        if url.startswith("sqlite"):
            assert "created the embedded database" in (await database.prepare() or "")
            assert await migrate.current(database) == migrate.head()
        else:
            with pytest.raises(StoreError, match=r"none \(no tables\).*`palabre db upgrade`"):
                await database.prepare()
    finally:
        await database.aclose()


@pytest.mark.anyio
async def test_an_unreachable_database_is_one_line_without_its_password():
    from tests.conftest import free_port

    database = open_database(f"postgresql://bot:hunter2secret@127.0.0.1:{free_port()}/palabre")
    try:
        with pytest.raises(StoreUnavailable) as failed:
            await database.prepare()
    finally:
        await database.aclose()
    message = str(failed.value)
    assert "\n" not in message and "hunter2secret" not in message
    assert message.startswith("the database at postgresql://bot:***@127.0.0.1:")


@pytest.mark.anyio
async def test_a_sqlite_file_another_writer_holds_is_unavailable_in_one_line(tmp_path, monkeypatch):
    import sqlite3

    from palabre.db import database as databases

    monkeypatch.setattr(databases, "BUSY_TIMEOUT_MS", 50)  # wait 50 ms for the lock, not 5 s
    path = tmp_path / "palabre.db"
    database = open_database(f"sqlite:///{path}")
    await migrate.upgrade(database)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing
    try:
        with pytest.raises(StoreUnavailable) as failed:
            await database.run(lambda conn: None)
    finally:
        holder.close()
        await database.aclose()
    assert "database is locked" in str(failed.value) and "\n" not in str(failed.value)


# -- the command line: palabre db, and serve's refusal ---------------------------------------


def palabre(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `palabre ARGS` on the database at `url` (DATABASE_URL, or the embedded file)."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env |= {"PALABRE_DATA_DIR": str(tmp_path), "PALABRE_SECRET": SERVE_SECRET}
    env |= {"PALABRE_DISABLE_PLUGINS": "twilio,meta_cloud"}
    if not url.startswith("sqlite"):
        env["DATABASE_URL"] = url
    command = [sys.executable, "-m", "palabre.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)


def test_db_upgrade_then_current(url, tmp_path):
    before = palabre(url, tmp_path, "db", "current")
    assert (before.returncode, before.stdout) == (
        1,
        f"none (this Palabre expects {migrate.head()}: run `palabre db upgrade`)\n",
    )
    upgraded = palabre(url, tmp_path, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.endswith(f"upgraded from empty to {migrate.head()}\n")
    after = palabre(url, tmp_path, "db", "current")
    assert (after.returncode, after.stdout) == (0, f"{migrate.head()} (head)\n")


def test_serve_refuses_a_schema_behind_the_code(url, tmp_path):
    database = open_database(url)
    asyncio.run(_upgrade_to(database, "0001"))
    served = palabre(url, tmp_path, "serve", "--flows", "flows/uic.yaml", "--port", "1")
    assert served.returncode == 2, served.stderr
    assert "Traceback" not in served.stderr
    (line,) = served.stderr.splitlines()
    assert line.startswith("palabre: the database at ")
    assert line.endswith(
        f"is at schema 0001, behind this Palabre ({migrate.head()}): run `palabre db upgrade`"
    )


@pytest.mark.anyio
async def test_the_web_app_refuses_to_start_on_a_schema_behind_the_code(url, tmp_path):
    from palabre.config import Settings
    from palabre.plugins import make_plugin_manager
    from palabre.web.app import create_app

    await _upgrade_to(open_database(url), "0001")
    settings = Settings(data_dir=tmp_path, database_url=url, secrets={"PALABRE_SECRET": "s"})
    plugins = make_plugin_manager(disabled=["twilio", "meta_cloud"])
    app = create_app([ROOT / "flows" / "uic.yaml"], settings, plugins=plugins)
    with pytest.raises(StoreError, match="run `palabre db upgrade`"):
        async with app.router.lifespan_context(app):
            pass


def test_serve_refuses_an_unreachable_database_in_one_line(tmp_path):
    from tests.conftest import free_port

    url = f"postgresql://bot:hunter2secret@127.0.0.1:{free_port()}/palabre"
    served = palabre(url, tmp_path, "serve", "--flows", "flows/uic.yaml")
    assert served.returncode == 2
    (line,) = served.stderr.splitlines()
    assert "is unavailable" in line and "DATABASE_URL" in line
    assert "hunter2secret" not in served.stderr


def test_serve_refuses_a_database_url_it_cannot_use(tmp_path):
    served = palabre("mysql://bot:hunter2secret@db/palabre", tmp_path, "serve")
    assert served.returncode == 2
    assert "DATABASE_URL names a 'mysql' database" in served.stderr
    assert "hunter2secret" not in served.stderr


async def _upgrade_to(database: Database, revision: str) -> None:
    try:
        await migrate.upgrade(database, revision)
    finally:
        await database.aclose()


def test_serve_creates_a_new_embedded_database_and_says_so(tmp_path):
    from tests.serving import serving

    env = {"PALABRE_SECRET": SERVE_SECRET, "PALABRE_DISABLE_PLUGINS": "twilio,meta_cloud"}
    with serving(tmp_path, env) as served:
        assert "palabre: created the embedded database" in served.stderr
    with sqlite3.connect(tmp_path / "palabre.db") as conn:
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision == migrate.head()
