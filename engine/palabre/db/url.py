"""Which database Palabre uses, and how to name it without its password.

`DATABASE_URL` selects PostgreSQL (`postgresql://user:password@host/db`, driven by
psycopg 3); unset, Palabre uses the embedded SQLite file `PALABRE_DATA_DIR/palabre.db`,
with no server to run. `sqlite:///path` is accepted too.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

EMBEDDED_FILE = "palabre.db"
# The schemes a user may write, and the async driver each one means.
ASYNC_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}


def database_url(raw: str | None, data_dir: Path) -> URL:
    """The async URL to open: `raw` (DATABASE_URL) when set, else the embedded file."""
    if not raw:
        return URL.create("sqlite+aiosqlite", database=str(data_dir / EMBEDDED_FILE))
    url = make_url(raw.strip())
    driver = ASYNC_DRIVERS.get(url.drivername)
    if driver is None:
        raise ValueError(database_url_problem(raw))
    return url.set(drivername=driver)


def database_url_problem(raw: str | None) -> str | None:
    """One line when DATABASE_URL cannot be used (it never repeats the URL: it may hold a
    password); None when it can, or when it is unset."""
    if not raw:
        return None
    try:
        url = make_url(raw.strip())
    except (ArgumentError, ValueError):  # ValueError: a bad port, e.g. postgresql://[::1/db
        return "DATABASE_URL is not a URL: give postgresql://user:password@host:5432/dbname"
    if url.drivername not in ASYNC_DRIVERS:
        return (
            f"DATABASE_URL names a '{url.drivername}' database: Palabre runs on PostgreSQL "
            "(postgresql://user:password@host:5432/dbname) or SQLite (sqlite:///path/palabre.db)"
        )
    if url.drivername.startswith("postgres") and not url.database:
        return "DATABASE_URL names no database: end it with /dbname"
    return None


def shown(url: URL) -> str:
    """How a URL appears in messages and logs: a file's path, or the URL with `***` for the
    password and the scheme the user wrote."""
    if url.get_backend_name() == "sqlite":
        return str(url.database or ":memory:")
    return url.set(drivername="postgresql").render_as_string(hide_password=True)
