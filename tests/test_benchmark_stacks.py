"""Reading py-spy profiles for the webhook benchmark (benchmarks/stacks.py): a pure helper."""

from __future__ import annotations

from benchmarks.stacks import (
    by_package,
    by_thread,
    own_inclusive,
    package,
    read_stacks,
    self_time,
)

LOOP = "BaseEventLoop._run_once (asyncio/base_events.py:1906)"
PROFILE = "\n".join(
    [
        "thread (0x7f01): MainThread;<module> (palabre/cli.py:238);"
        f"{LOOP};Engine.handle (palabre/runtime/engine.py:108);"
        "Redis.execute_command (redis/asyncio/client.py:600);"
        "StreamWriter.write (asyncio/streams.py:330) 30",
        f"thread (0x7f01): MainThread;<module> (palabre/cli.py:238);{LOOP};"
        "EpollSelector.select (selectors.py:468) 10",
        "thread (0x7f02): Thread-7 (_connection_worker_thread);"
        "_connection_worker_thread (aiosqlite/core.py:63) 5",
        "thread (0x7f03): asyncio_4;_worker (concurrent/futures/thread.py:83);"
        "Database._in_thread (palabre/db/database.py:118) 5",
    ]
)


def test_time_spent_in_the_standard_library_goes_to_the_package_that_asked_for_it(tmp_path):
    path = tmp_path / "profile.txt"
    path.write_text(PROFILE + "\n")
    stacks = read_stacks(path)
    packages = by_package(stacks)
    assert packages["redis"] == 30, "asyncio's write on behalf of redis is redis's"
    assert packages["asyncio event loop"] == 10, "polling with nothing on top is the loop's"
    assert by_thread(stacks) == {"MainThread": 40, "_connection_worker_thread": 5, "asyncio": 5}
    assert self_time(stacks)["StreamWriter.write (asyncio/streams.py)"] == 30


def test_palabre_functions_count_once_per_stack_and_entry_points_not_at_all(tmp_path):
    path = tmp_path / "profile.txt"
    path.write_text(PROFILE + "\n")
    inclusive = own_inclusive(read_stacks(path))
    assert inclusive["Engine.handle (palabre/runtime/engine.py)"] == 30
    assert inclusive["Database._in_thread (palabre/db/database.py)"] == 5
    assert not any("cli.py" in name for name in inclusive), "the CLI is on every stack"


def test_a_frame_belongs_to_its_top_level_package_wherever_py_spy_found_it():
    assert package("sqlalchemy/engine/base.py") == "sqlalchemy", "not the project's engine/"
    assert package("palabre_qr/png.py") == "palabre_qr"
    assert package("/usr/lib/python3.11/asyncio/events.py") == "asyncio"
    assert package("/venv/lib/python3.11/site-packages/redis/client.py") == "redis"
