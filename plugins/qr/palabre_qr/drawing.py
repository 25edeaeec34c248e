"""Drawing QR codes off the event loop: one worker process, and a small cache per text.

Drawing a code takes a few milliseconds of pure Python (most of it choosing the mask, as
ISO/IEC 18004 asks), which on the event loop would hold every other contact's turn, and
in a thread would still hold the GIL. So `Drawer.draw(text)` asks a process of its own,
`python -m palabre_qr.worker`, started on first use and again after it dies. It is a
plain subprocess, not multiprocessing: nothing re-imports the server's main module, and
nothing is forked from a process with threads and sockets. Requests go one at a time
over its stdin and stdout (palabre_qr.frames), from a thread that
only waits on the pipe (the GIL is free meanwhile), so the drawer belongs to no event
loop, and a turn that gives up waiting never leaves the pipe half-read.

The same text always gives the same bytes, so the last `CACHE_SIZE` drawings are kept:
a returning person's card is not drawn again.
"""

from __future__ import annotations

import asyncio
import struct
import subprocess
import sys
import threading
from collections import OrderedDict

from palabre.errors import ActionError
from palabre_qr.frames import DRAWN, HEADER, HEADER_SIZE
from palabre_qr.png import load_qrcode

CACHE_SIZE = 256  # drawings kept (about 400 bytes each)
STOPPED = "qr.code: the drawing process stopped; try again"


class Drawer:
    """Draws QR PNGs in a worker process, caching the latest by text."""

    def __init__(self, cache_size: int = CACHE_SIZE) -> None:
        self.cache_size = cache_size
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # one request at a time on the pipe

    async def draw(self, text: str) -> bytes:
        """The PNG of `text`; ActionError when it cannot be drawn or the packages are missing."""
        load_qrcode()  # here, so that a missing extra is named in this process's log
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            return cached
        png = await asyncio.to_thread(self._in_worker, text)
        self._cache[text] = png
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return png

    def _in_worker(self, text: str) -> bytes:
        with self._lock:
            process = self._started()
            try:
                return _ask(process, text.encode("utf-8"))
            except (OSError, EOFError):
                self._forget(process)
                raise ActionError(STOPPED) from None

    def _started(self) -> subprocess.Popen[bytes]:
        process = self._process
        if process is None or process.poll() is not None:
            command = [sys.executable, "-m", "palabre_qr.worker"]
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            self._process = process
        return process

    def _forget(self, process: subprocess.Popen[bytes]) -> None:
        if self._process is process:
            self._process = None
        process.kill()
        process.wait()

    def close(self) -> None:
        """Stop the worker process (it starts again if a drawing is asked for)."""
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.close()  # the worker ends at the end of its input
            process.wait()
            process.stdout.close()

    @property
    def pid(self) -> int | None:
        """The worker process's id, while it runs."""
        return self._process.pid if self._process else None


def _ask(process: subprocess.Popen[bytes], text: bytes) -> bytes:
    """One request and its answer; EOFError when the worker ended before answering."""
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(struct.pack(HEADER, 0, len(text)) + text)
    process.stdin.flush()
    status, size = struct.unpack(HEADER, _read(process, HEADER_SIZE))
    payload = _read(process, size)
    if status != DRAWN:
        raise ActionError(payload.decode("utf-8", "replace"))
    return payload


def _read(process: subprocess.Popen[bytes], size: int) -> bytes:
    assert process.stdout is not None
    data = process.stdout.read(size)  # a buffered pipe: all `size` bytes, or the end
    if len(data) < size:
        raise EOFError("the worker ended")
    return data


DRAWER = Drawer()  # one per process: the action is a module-level object
