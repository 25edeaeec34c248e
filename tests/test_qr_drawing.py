"""QR codes are drawn in a worker process, never on the event loop, and cached by text."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import struct
import subprocess
import sys
from collections.abc import Iterator

import pytest
from tests.test_qr import CODE, decode

from palabre.errors import ActionError
from palabre_qr.drawing import Drawer
from palabre_qr.frames import DRAWN, FAILED, HEADER, MAX_TEXT
from palabre_qr.png import qr_png
from palabre_qr.worker import serve

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
    assert drawer.pid is not None and drawer.pid != os.getpid()


async def test_the_latest_drawings_are_kept_and_the_oldest_forgotten(drawer: Drawer):
    first = await drawer.draw("A1")
    await drawer.draw("A2")

    def refuse(text: str) -> bytes:
        raise AssertionError(f"{text} should have come from the cache")

    drawer._in_worker = refuse  # type: ignore[method-assign]
    assert await drawer.draw("A1") == first
    del drawer._in_worker
    await drawer.draw("A3")  # drawn: the cache now holds A1 and A3
    drawer._in_worker = refuse  # type: ignore[method-assign]
    with pytest.raises(AssertionError, match="A2 should have come from the cache"):
        await drawer.draw("A2")


async def test_a_killed_worker_is_replaced_by_the_next_drawing(drawer: Drawer):
    await drawer.draw("B1")
    killed = drawer.pid
    assert killed is not None and drawer._process is not None
    os.kill(killed, signal.SIGKILL)
    drawer._process.wait()
    assert decode(await drawer.draw("B2")) == "B2"
    assert drawer.pid not in (None, killed), "a new worker drew it"


async def test_a_worker_dying_mid_request_fails_that_drawing_only(drawer: Drawer):
    # A stand-in that reads the start of the request, then dies without answering.
    drawer._process = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.buffer.read(1)"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    with pytest.raises(ActionError, match="the drawing process stopped"):
        await drawer.draw("C2")
    assert decode(await drawer.draw("C2")) == "C2", "the next drawing starts a new worker"


async def test_a_text_too_long_is_an_action_error_from_the_worker(drawer: Drawer):
    with pytest.raises(ActionError, match="too long for one QR code"):
        await drawer.draw("x" * 5000)
    assert decode(await drawer.draw("D1")) == "D1", "the worker goes on"


def frame(text: bytes, length: int | None = None) -> bytes:
    return struct.pack(HEADER, 0, len(text) if length is None else length) + text


def answers_to(requests: bytes) -> list[tuple[int, bytes]]:
    output = io.BytesIO()
    serve(io.BytesIO(requests), output)
    data, found, size = output.getvalue(), [], struct.calcsize(HEADER)
    while data:
        status, length = struct.unpack(HEADER, data[:size])
        found.append((status, data[size : size + length]))
        data = data[size + length :]
    return found


def test_the_worker_answers_each_frame_and_stops_at_a_bad_one():
    answers = answers_to(
        frame(CODE.encode()) + frame(b"x" * 5000) + frame(b"", MAX_TEXT + 1) + frame(b"E1")
    )
    assert [status for status, _ in answers] == [DRAWN, FAILED], "nothing after the bad frame"
    assert answers[0][1] == qr_png(CODE)
    assert b"too long" in answers[1][1] and b"xxxx" not in answers[1][1]
