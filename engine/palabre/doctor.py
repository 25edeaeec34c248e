"""`palabre doctor [--flows flows]`: what would stop or hamper Palabre here, starting nothing.

It reads the settings as `palabre serve` does (the environment and `.env`) and prints one
line per finding; it serves nothing, sends nothing, migrates nothing and creates no
database:
- `error: ...` for each problem `serve` would refuse to start on (`startup_problems`:
  Palabre's settings, PALABRE_DISABLE_PLUGINS, each plugin's `check_settings`), a flows
  folder with no flow in it, a database that does not answer or whose schema is behind
  the code, and a Redis (REDIS_URL) that does not answer;
- `note: ...` for what stops nothing but is worth knowing: settings no longer read, an
  embedded database not created yet, and each plugin's `doctor_notes` (Twilio's WhatsApp
  sandbox and its join rules, for one).

Exit status 1 when there is an `error:` line, else 0; `no problem found` when there is
nothing to say. What the flows themselves say is `palabre check`'s to report.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from palabre.config import DATA_DIR, Settings
from palabre.config_checks import data_dir_problem, redis_url_problem
from palabre.errors import PalabreError

if TYPE_CHECKING:  # imported when the command runs, so that `palabre` starts quickly
    import pluggy

    from palabre.db.database import Database

NOTHING_FOUND = "no problem found"


@dataclass
class Findings:
    """What the doctor found: each error would stop `palabre serve`; notes stop nothing."""

    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The lines to print: the errors first, then the notes."""
        return [f"error: {line}" for line in self.errors] + [f"note: {line}" for line in self.notes]


def add_doctor_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `doctor` to the `palabre` parser."""
    doctor = commands.add_parser(
        "doctor", help="say what would stop or hamper Palabre here, without starting it"
    )
    doctor.add_argument("--flows", default="flows", help="the folder (or file) of flows")
    doctor.set_defaults(run=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    """The `doctor` command: prints the findings; 1 when one is an error, else 0."""
    from palabre.plugins import make_plugin_manager

    found = examine(Settings.from_env(), make_plugin_manager(), args.flows)
    for line in found.lines() or [NOTHING_FOUND]:
        print(line)
    return 1 if found.errors else 0


def examine(settings: Settings, manager: pluggy.PluginManager, flows: str) -> Findings:
    """Everything the doctor has to say about these settings, plugins and flows."""
    from palabre.serve import startup_problems

    found = Findings(startup_problems(settings, manager, [flows]), settings.notices())
    if not flow_files_in(flows):
        found.errors.append(f"no flow file found in {flows}: give --flows the folder of flows")
    asyncio.run(check_stores(settings, manager, found))
    for batch in manager.hook.doctor_notes(settings=settings):
        found.notes += batch
    return found


def flow_files_in(flows: str) -> list[Path]:
    """The flow files `serve --flows` would load from there (none when it does not exist)."""
    from palabre.bootstrap import flow_files

    return [path for path in flow_files([flows]) if path.is_file()]


async def check_stores(settings: Settings, manager: pluggy.PluginManager, found: Findings) -> None:
    """Whether the database answers at the current schema, and Redis when REDIS_URL is set.

    A setting that says where they are and cannot be used is an error already: not opened.
    """
    if database_located(settings):
        await check_database(settings, manager, found)
    if settings.redis_url and not redis_url_problem(settings.redis_url):
        await check_session_store(settings, manager, found)


def database_located(settings: Settings) -> bool:
    """Whether DATABASE_URL, or the data folder of the embedded database, can be used."""
    from palabre.db.url import database_url_problem

    if settings.database_url:
        return database_url_problem(settings.database_url) is None
    return data_dir_problem(DATA_DIR, str(settings.data_dir)) is None


async def check_database(
    settings: Settings, manager: pluggy.PluginManager, found: Findings
) -> None:
    """Open the durable stores as `serve` does, and ask the database to answer."""
    try:
        stores = manager.hook.make_stores(settings=settings, clock=time.time)
    except PalabreError as exc:
        found.errors.append(str(exc))
        return
    if stores is None:
        return
    try:
        if not_created_yet(stores.database):  # opening it would create it: say so instead
            found.notes.append(
                f"the embedded database {stores.database.where} does not exist yet: "
                "`palabre serve` will create it at the current schema"
            )
            return
        created = await stores.open()
        await stores.ping()
        if created:  # an empty file was there: serve would have done the same
            found.notes.append(created)
    except PalabreError as exc:  # unreachable, or a schema behind the code: one line each
        found.errors.append(str(exc))
    finally:
        await stores.aclose()


def not_created_yet(database: Database) -> bool:
    """Whether the database is an embedded file that is not there yet."""
    name = database.url.database
    return database.embedded and name not in (None, "", ":memory:") and not Path(name).exists()


async def check_session_store(
    settings: Settings, manager: pluggy.PluginManager, found: Findings
) -> None:
    """Ask the session store (Redis, with REDIS_URL) to answer."""
    try:
        store = manager.hook.make_session_store(settings=settings)
    except PalabreError as exc:
        found.errors.append(str(exc))
        return
    if store is None:
        return
    try:
        await store.ping()
    except PalabreError as exc:
        found.errors.append(str(exc))
    finally:
        await store.aclose()
