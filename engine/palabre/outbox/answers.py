"""When the answers to a send's HTTP requests come: a send holds its room in its sender's
window (palabre.outbox.limits) until then, not until the transport is done with it (it
logs the message after). The worker sets an `Answers` for each send (`watched`), and the
HTTP client's hooks (`watch_answers`) count the requests and note the last answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import httpx


@dataclass
class Answers:
    """The HTTP requests of one send: how many await their answer, when the last came."""

    clock: Callable[[], float]
    waiting: int = 0
    answered: float | None = None

    def last(self) -> float | None:
        """When the last answer came; None while a request had none (it may still arrive)."""
        return self.answered if self.waiting == 0 else None


# The send that the current task makes, watched by the client's hooks (see watch_answers).
ANSWERS: ContextVar[Answers | None] = ContextVar("palabre_outbox_answers", default=None)


async def _asked(request: httpx.Request) -> None:
    answers = ANSWERS.get()
    if answers is not None:
        answers.waiting += 1


async def _answered(response: httpx.Response) -> None:
    answers = ANSWERS.get()
    if answers is not None:
        answers.waiting -= 1
        answers.answered = answers.clock()


def watch_answers(http: httpx.AsyncClient) -> None:
    """Note when each answer to a send's requests comes: a send holds its room in its
    sender's window until then, not until the transport is done (it logs the message)."""
    hooks = http.event_hooks
    if _answered not in hooks["response"]:
        http.event_hooks = {
            "request": [*hooks["request"], _asked],
            "response": [*hooks["response"], _answered],
        }


@contextmanager
def watched(answers: Answers) -> Iterator[Answers]:
    """The requests made inside this block, by this task, are counted in `answers`."""
    token = ANSWERS.set(answers)
    try:
        yield answers
    finally:
        ANSWERS.reset(token)
