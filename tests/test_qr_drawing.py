"""QR codes are drawn in a worker process, never on the event loop, and cached by text."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
from tests.test_qr import CODE, decode

from palabre.errors import ActionError
from palabre_qr.drawing import Drawer, worker_pid
from palabre_qr.png import qr_png

pytestmark = pytest.mark.anyio


@pytest.fixture
def drawer() -> Iterator[Drawer]:
    made = Drawer(cache_size=2)
    yield made
    made.close()


async def test_the_event_loop_runs_other_turns_while_a_code_is_drawn(drawer: Drawer):
    drawing = asyncio.create_task(drawer.draw(CODE))
    turns = 0

    async def other_contacts() -> None:
        nonlocal turns
        while not drawing.done():
            turns += 1
            await asyncio.sleep(0)

    await asyncio.gather(drawing, other_contacts())
    assert turns >= 1, "a drawing on the event loop would finish before anyone else ran"
    assert drawing.result() == qr_png(CODE) and decode(drawing.result()) == CODE


async def test_the_drawing_happens_in_another_process(drawer: Drawer):
    await drawer.draw(CODE)
    pool = drawer._executor()
    elsewhere = await asyncio.get_running_loop().run_in_executor(pool, worker_pid)
    assert elsewhere != os.getpid()


async def test_the_latest_drawings_are_kept_and_the_oldest_forgotten(drawer: Drawer):
    first = await drawer.draw("A1")
    await drawer.draw("A2")
    drawer.close()  # from here, a drawing that is not cached starts a new process

    async def refuse(text: str) -> bytes:
        raise AssertionError(f"{text} should have come from the cache")

    drawer._in_worker = refuse  # type: ignore[method-assign]
    assert await drawer.draw("A1") == first
    del drawer._in_worker
    await drawer.draw("A3")  # drawn: the cache now holds A1 and A3
    drawer._in_worker = refuse  # type: ignore[method-assign]
    with pytest.raises(AssertionError, match="A2 should have come from the cache"):
        await drawer.draw("A2")


async def test_a_killed_drawing_process_fails_one_drawing_and_the_next_starts_a_new_one(
    drawer: Drawer,
):
    await drawer.draw("B1")
    pool = drawer._executor()
    for process in list(pool._processes.values()):  # type: ignore[attr-defined]
        process.kill()
        process.join()
    with pytest.raises(ActionError, match="the drawing process stopped"):
        await drawer.draw("B2")
    assert decode(await drawer.draw("B2")) == "B2", "a new process draws the next one"


async def test_a_text_too_long_is_an_action_error_from_the_worker(drawer: Drawer):
    with pytest.raises(ActionError, match="too long for one QR code"):
        await drawer.draw("x" * 5000)
