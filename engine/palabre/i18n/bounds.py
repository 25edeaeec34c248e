"""The bounds one template render must stay within, and the budget that enforces them.

Templates come from flow authors and render on the server's event loop, so a runaway
template (a huge loop, a recursive macro, `'x' * 10**9`) would stall every conversation.
Each render gets a `Budget`: loop steps and calls are counted, the clock is read at every
step, every value the template makes is measured, and the text it outputs is capped. Going
past a bound raises `BoundExceeded`, which ends that render (and only that contact's turn).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MappingView
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2.utils import Namespace

# A WhatsApp body is 4,096 characters and a long SMS 1,600; four times that is still a message.
MAX_OUTPUT = 16_384
# Characters or items of any one string or list a template makes (Jinja's own range cap).
MAX_VALUE = 100_000
# Characters made by all the operations of one render: bounds memory, not just one value.
MAX_CREATED = 4_000_000
# Items of one range(); a chat message never lists more.
MAX_RANGE = 10_000
# Loop iterations and calls in one render: a few tens of milliseconds of work.
MAX_STEPS = 100_000
# Nested macro calls and recursive loops: enough for any message, far below Python's limit.
MAX_DEPTH = 20
# Bits of one integer: Python refuses to print an integer of more than 4,300 digits.
MAX_INT_BITS = 4_096
# Seconds one render may compute; every other conversation waits at most about this long.
DEADLINE = 0.2
# Seconds all the renders of one turn may compute together: a flow that renders many
# templates in one turn (a chain of steps) must not add up to a long stall either.
TURN_DEADLINE = 0.5
# The deadline counts the rendering thread's CPU time, not the wall clock: on a loaded
# machine an ordinary message paused by the scheduler must not fail.
CLOCK = time.thread_time
# Reading it is a system call (about 1 µs here, and a render checks often); a thread's CPU
# time never runs ahead of the wall clock, so the cheap wall clock is read first, and the
# CPU clock only once the wall clock has passed the deadline.
WALL = time.perf_counter

TEXTS = (str, bytes)
# What holds other values: its size is what it holds, however deeply, not its outer length.
CONTAINERS = (list, tuple, set, frozenset, Mapping, MappingView, Namespace)
# Items a deep measure walks between two looks at the clock.
CLOCK_EVERY = 4_096


def deep_size(value: Any, limit: int, on_time: Callable[[], None] | None = None) -> int:
    """Characters and items in `value`, through nested containers, each shared one counted
    every time it appears (as printing it would); the walk stops once past `limit`.

    A string counts its characters, an integer about its digits, any other value one; every
    item of a container counts at least one. The walk costs at most about `limit` items, so
    measuring is never the runaway itself; the result is exact up to `limit`.
    """
    return _walk(value, limit, on_time)[0]


def _walk(value: Any, limit: int, on_time: Callable[[], None] | None) -> tuple[int, bool]:
    """deep_size, and whether all of `value` was measured (so the size is exact)."""
    if type(value) is str:  # most values are: no walk, no look at the clock
        return len(value), True
    size, todo, walked, skipped = 0, [value], 0, False
    while todo and size <= limit:
        item = todo.pop()
        # Every item but the outermost had its first unit counted with its container.
        size += _own_size(item) - (walked > 0 and _own_size(item) > 0)
        walked += 1
        held = _held(item)
        if held:
            size += sum(len(part) for part in held)
            if size <= limit:
                for part in held:
                    todo.extend(part)
            else:
                skipped = True
        if on_time is not None and walked % CLOCK_EVERY == 0:
            on_time()
    return size, not (todo or skipped)


def _own_size(item: Any) -> int:
    if isinstance(item, TEXTS):
        return len(item)
    if isinstance(item, int) and not isinstance(item, bool):
        return max(item.bit_length() // 4, 1)  # fewer than its decimal digits, never more
    return 0 if isinstance(item, CONTAINERS) else 1


def _held(item: Any) -> tuple[Any, ...]:
    """What `item` holds, as sized parts (a mapping's keys and values), or ()."""
    if isinstance(item, Namespace):
        item = object.__getattribute__(item, "_Namespace__attrs")
    if isinstance(item, Mapping):
        return (item.keys(), item.values())
    return (item,) if isinstance(item, CONTAINERS) else ()


class BoundExceeded(jinja2.TemplateRuntimeError):
    """A render went past one of its bounds; the message says which, never with data."""


@dataclass(frozen=True)
class Limits:
    """The bounds of one render; tests shrink them to reach each one quickly."""

    output: int = MAX_OUTPUT
    value: int = MAX_VALUE
    created: int = MAX_CREATED
    range: int = MAX_RANGE
    steps: int = MAX_STEPS
    depth: int = MAX_DEPTH
    int_bits: int = MAX_INT_BITS
    seconds: float = DEADLINE


@dataclass
class Budget:
    """What one render has used so far, against its `limits`."""

    limits: Limits = field(default_factory=Limits)
    clock: Callable[[], float] = CLOCK
    seconds: float | None = None  # what is left of the turn's allowance, when less
    steps: int = 0
    created: int = 0
    depth: int = 0
    deadline: float = 0.0
    wall_deadline: float = -math.inf  # before it, the CPU deadline cannot have passed

    def __post_init__(self) -> None:
        allowed = self.limits.seconds if self.seconds is None else self.seconds
        self.deadline = self.clock() + allowed
        if self.clock is CLOCK:  # a test's own clock is read every time
            self.wall_deadline = WALL() + allowed

    def step(self) -> None:
        """Count one loop iteration or call, and stop when the render has run too long."""
        self.steps += 1
        if self.steps > self.limits.steps:
            raise BoundExceeded(
                f"loops and calls ran more than {self.limits.steps} steps, "
                "the most one message may take"
            )
        self.on_time()

    def on_time(self) -> None:
        if WALL() < self.wall_deadline:
            return
        if self.clock() >= self.deadline:
            raise BoundExceeded(
                f"rendering took longer than {self.limits.seconds * 1000:g} ms, "
                "the most one message may take"
            )

    def made(self, value: Any) -> Any:
        """Measure a value the template just made; refuse it when it is too big."""
        if isinstance(value, int) and not isinstance(value, bool):
            self.check_int_bits(value.bit_length())
        elif isinstance(value, (*TEXTS, *CONTAINERS)):
            self.created += self.check_value(value)
            if self.created > self.limits.created:
                raise BoundExceeded(
                    f"the template made more than {self.limits.created} characters in all"
                )
        return value

    def check_value(self, value: Any, what: str = "a value", limit: int | None = None) -> int:
        """The deep size of `value` (see deep_size), refused when over `limit`."""
        limit = self.limits.value if limit is None else limit
        if not isinstance(value, (*TEXTS, *CONTAINERS)):
            return 1
        size, exact = _walk(value, limit, self.on_time)
        if size > limit:
            raise BoundExceeded(
                f"{what} of {size if exact else f'more than {limit}'} characters or items "
                f"is over the limit of {limit}"
            )
        return size

    def printable(self, value: Any) -> Any:
        """`value`, checked before `{{ }}` turns it into text: `str()` of a short list of
        references to one long list writes it all out in one uninterruptible go. Its text
        is at least as long as its deep size, so past the output limit it cannot be sent."""
        if deep_size(value, self.limits.output, self.on_time) > self.limits.output:
            raise self._too_long()
        return value

    def check_size(self, size: int, what: str = "a value") -> None:
        if size > self.limits.value:
            raise BoundExceeded(
                f"{what} of {size} characters or items is over the limit of {self.limits.value}"
            )

    def check_int_bits(self, bits: int) -> None:
        if bits > self.limits.int_bits:
            raise BoundExceeded(f"a number of over {self.limits.int_bits} bits is too large")

    def counted(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """`iterable`, counting each item as a step: every `{% for %}` loops through this."""
        for item in iterable:
            self.step()
            yield item

    @contextmanager
    def nested(self) -> Iterator[None]:
        """One level of macro call or recursive loop; too many levels end the render."""
        self.depth += 1
        try:
            if self.depth > self.limits.depth:
                raise BoundExceeded(
                    f"macros or recursive loops nested more than {self.limits.depth} levels deep"
                )
            yield
        finally:
            self.depth -= 1

    def concat(self, pieces: Iterable[str]) -> str:
        """Join output pieces as they stream, stopping as soon as they are too long."""
        kept: list[str] = []
        size = 0
        for piece in pieces:
            size += len(piece)
            if size > self.limits.output:
                raise self._too_long()
            self.on_time()
            kept.append(piece)
        return "".join(kept)

    def _too_long(self) -> BoundExceeded:
        return BoundExceeded(
            f"the text is longer than {self.limits.output} characters, the most one message may be"
        )


@dataclass
class Allowance:
    """The compute time all the renders of one turn may use, and what they used so far."""

    seconds: float = TURN_DEADLINE
    spent: float = 0.0


_current: ContextVar[Budget | None] = ContextVar("palabre_template_budget", default=None)
_turn: ContextVar[Allowance | None] = ContextVar("palabre_turn_allowance", default=None)


@contextmanager
def per_turn(seconds: float = TURN_DEADLINE) -> Iterator[Allowance]:
    """Every render inside this block (one turn) draws on one shared time allowance."""
    token = _turn.set(Allowance(seconds))
    try:
        yield _turn.get() or Allowance(seconds)
    finally:
        _turn.reset(token)


class budget:
    """A fresh budget for the render that runs inside this block, within the turn's.

    A class, not a generator: it runs for every render of every message."""

    __slots__ = ("_allowance", "_started", "_token", "clock", "limits")

    def __init__(self, limits: Limits, clock: Callable[[], float] = CLOCK) -> None:
        self.limits, self.clock = limits, clock

    def __enter__(self) -> Budget:
        allowance = self._allowance = _turn.get()
        left = None if allowance is None else max(0.0, allowance.seconds - allowance.spent)
        seconds = None if left is None else min(left, self.limits.seconds)
        fresh = Budget(self.limits, self.clock, seconds=seconds)
        self._token = _current.set(fresh)
        self._started = fresh.deadline - (self.limits.seconds if seconds is None else seconds)
        return fresh

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._token)
        if self._allowance is not None:
            self._allowance.spent += self.clock() - self._started


def current() -> Budget:
    """The budget of the render under way (a fresh one outside `budget()`, e.g. at compile)."""
    return _current.get() or Budget()
