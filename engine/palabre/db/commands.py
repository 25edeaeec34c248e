"""`palabre db upgrade` and `palabre db current`: the database schema, from the command line.

Both read DATABASE_URL (else the embedded `PALABRE_DATA_DIR/palabre.db`) through the
settings. An unreachable database is one line and exit status 2, its password never shown.
"""

from __future__ import annotations

import argparse
import asyncio

from palabre.config import Settings


def add_db_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `db` command group to the `palabre` parser."""
    db = commands.add_parser("db", help="the database: apply migrations, show the schema")
    steps = db.add_subparsers(title="steps")
    upgrade = steps.add_parser("upgrade", help="apply the migrations up to this Palabre's schema")
    upgrade.set_defaults(run=run_upgrade)
    current = steps.add_parser("current", help="print the database's schema revision")
    current.set_defaults(run=run_current)


def run_upgrade(args: argparse.Namespace) -> int:
    """Migrate the database to the head; prints what changed."""
    from palabre.db import migrate
    from palabre.db.database import Database

    async def upgrade() -> str:
        database = Database.from_settings(Settings.from_env())
        try:
            before, after = await migrate.upgrade(database)
        finally:
            await database.aclose()
        if before == after:
            return f"the database at {database.where} is already at schema {after}"
        return f"the database at {database.where} upgraded from {before or 'empty'} to {after}"

    print(asyncio.run(upgrade()))
    return 0


def run_current(args: argparse.Namespace) -> int:
    """Print the revision, and whether it is this Palabre's; exit 1 when it is behind."""
    from palabre.db import migrate
    from palabre.db.database import Database

    async def current() -> str | None:
        database = Database.from_settings(Settings.from_env())
        try:
            return await migrate.current(database)
        finally:
            await database.aclose()

    found, head = asyncio.run(current()), migrate.head()
    if found == head:
        print(f"{found} (head)")
        return 0
    print(f"{found or 'none'} (this Palabre expects {head}: run `palabre db upgrade`)")
    return 1
