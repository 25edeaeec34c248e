"""Drawing QR codes off the event loop: one worker process, and a small cache per text.

Drawing a code takes a few milliseconds of pure Python (most of it choosing the mask, as
ISO/IEC 18004 asks), which on the event loop would hold every other contact's turn. So
`draw(text)` sends the work to a process of its own (a thread would still hold the GIL),
started on first use with `spawn` (never a fork of a server with threads and sockets).
The same text always gives the same bytes, so the last `CACHE_SIZE` drawings are kept:
a returning person's card is not drawn again.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from palabre.errors import ActionError
from palabre_qr.png import load_qrcode, qr_png

CACHE_SIZE = 256  # drawings kept (about 400 bytes each)


class Drawer:
    """Draws QR PNGs in a worker process, caching the latest by text."""

    def __init__(self, cache_size: int = CACHE_SIZE) -> None:
        self.cache_size = cache_size
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()  # two event loops (tests, threads) may start it at once

    async def draw(self, text: str) -> bytes:
        """The PNG of `text`; ActionError when it cannot be drawn or the packages are missing."""
        load_qrcode()  # here, so that a missing extra is named in this process's log
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            return cached
        png = await self._in_worker(text)
        self._cache[text] = png
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return png

    async def _in_worker(self, text: str) -> bytes:
        pool = self._executor()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, qr_png, text)
        except BrokenProcessPool:  # the process died (killed, out of memory): a new one next time
            self._forget(pool)
            raise ActionError("qr.code: the drawing process stopped; try again") from None

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
            return self._pool

    def _forget(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the worker process (it is started again if a drawing is asked for)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def worker_pid() -> int:
    """The id of the process running this (to show where drawings happen)."""
    return os.getpid()


DRAWER = Drawer()  # one per process: the action is a module-level object
