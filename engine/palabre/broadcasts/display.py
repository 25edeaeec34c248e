"""What `palabre broadcast` shows a person: the cost before, the progress during, the
status after. Counts, line numbers and reasons; never an address, a name or a text.

The progress is a live `rich` bar on a terminal, and one plain line a few times a
minute otherwise (a log file, a CI job). Its ETA comes from the sender's rate cap, not
from the speed so far: the cap is what the workers keep to.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from palabre.broadcasts.preview import Estimate
from palabre.broadcasts.store import UNSENT, Broadcast, Failure
from palabre.broadcasts.store import Progress as Counts

PLAIN_EVERY = 15.0  # seconds between two lines when the output is no terminal
STALLED = 30.0  # seconds without a message leaving before the person is told why it may be
ORDER = ("sent", "delivered", "read", "failed", "undelivered", "unconfirmed", "expired")


def cost_lines(
    estimate: Estimate, counts: Counts, seconds: float | None, rate: str
) -> Iterator[str]:
    """The summary printed before a broadcast starts."""
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(counts.skipped.items()))
    yield f"{many(estimate.sendable, 'recipient')} of {many(counts.lines, 'line')}" + (
        f" (skipped: {skipped})" if skipped else ""
    )
    if estimate.unknown:
        yield (
            f"  {many(estimate.unknown, 'recipient')} of unknown cost: the flow runs an action "
            "before its first message, which a dry run does not"
        )
    for language, cost in sorted(estimate.languages.items()):
        line = f"  {language or '?'}: {many(cost.recipients, 'recipient')}, "
        line += many(cost.messages, "message")
        if cost.segments:
            kinds = " and ".join(sorted(cost.encodings))
            line += f", {many(cost.segments, 'SMS segment')} ({kinds}"
            line += f", {cost.per_recipient:.1f} per recipient)"
        yield line
    if estimate.segments:
        yield f"SMS segments in all: {estimate.segments}"
    if seconds is None:
        yield f"Rate: {rate}"
    else:
        yield f"Rate: {rate}; time: {'about ' if seconds >= 1 else ''}{duration(seconds)}"


def many(count: int, word: str) -> str:
    """`1 line`, `2 lines`."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def duration(seconds: float) -> str:
    """`3 min 20 s`, `1 h 5 min`, `12 s`, `under 1 s`."""
    if seconds < 1:
        return "under 1 s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def counts_text(counts: Counts) -> str:
    """`waiting 120 · queued 30 · sent 850 · failed 2`: the lines and messages by state."""
    parts = [f"waiting {counts.waiting}"] if counts.waiting else []
    queued = counts.unsent
    parts += [f"queued {queued}"] if queued else []
    parts += [f"{s} {counts.messages[s]}" for s in ORDER if counts.messages.get(s)]
    skipped = sum(counts.skipped.values()) + counts.messages.get("skipped", 0)
    parts += [f"skipped {skipped}"] if skipped else []
    return " · ".join(parts) or "nothing yet"


class Live:
    """The progress of one broadcast, on a terminal or as plain lines."""

    def __init__(self, broadcast: Broadcast, expected: int, per_second: float | None) -> None:
        self.console = Console(stderr=True)
        self.expected, self.per_second = max(1, expected), per_second
        self.bar = Progress(
            TextColumn(f"broadcast {broadcast.id}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[counts]}"),
            TextColumn("ETA {task.fields[eta]}"),
            console=self.console,
            disable=not self.console.is_terminal,
        )
        self.task = self.bar.add_task("", total=self.expected, counts="", eta="?")
        self.printed, self.last = 0.0, ""
        self.settled, self.moved, self.warned = -1, time.monotonic(), False

    def __enter__(self) -> Live:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()
        if not self.console.is_terminal and self.last:  # where it ended, in the log too
            self.console.print(self.last)

    def show(self, counts: Counts) -> None:
        """Update the bar (or print a line, now and then) with the latest counts."""
        settled = sum(n for status, n in counts.messages.items() if status not in UNSENT)
        left = max(0, self.expected - settled)
        eta = duration(left / self.per_second) if self.per_second else "?"
        self.bar.update(self.task, completed=settled, counts=counts_text(counts), eta=eta)
        now, self.last = time.monotonic(), f"{settled}/{self.expected} · {counts_text(counts)}"
        if not self.console.is_terminal and now - self.printed >= PLAIN_EVERY:
            self.printed = now
            self.console.print(f"{self.last} · ETA {eta}")
        self._stalled(settled, counts.unsent, now)

    def _stalled(self, settled: int, unsent: int, now: float) -> None:
        """Say once when messages wait and none has left for a while: no worker runs?"""
        if settled != self.settled or not unsent:
            self.settled, self.moved = settled, now
        elif now - self.moved > STALLED and not self.warned:
            self.warned = True
            self.console.print(
                f"nothing has left the outbox for {STALLED:.0f} s: is `palabre serve` or "
                "`palabre worker` running with these settings?"
            )


def list_line(broadcast: Broadcast, counts: Counts) -> str:
    """One broadcast in `palabre broadcast list`."""
    when = datetime.fromtimestamp(broadcast.created_at, UTC).strftime("%Y-%m-%d %H:%M")
    state = "finished" if counts.finished else f"{counts.waiting} lines waiting"
    return f"{broadcast.id}  {when}  {broadcast.flow}  {counts.lines} lines  {state}"


def status_lines(broadcast: Broadcast, counts: Counts, failures: list[Failure]) -> Iterator[str]:
    """`palabre broadcast status ID`, as text."""
    yield (
        f"broadcast {broadcast.id}: flow {broadcast.flow}, {broadcast.purpose}, "
        f"from {broadcast.source}"
    )
    state = "finished" if counts.finished else "lines waiting" if counts.waiting else "sending"
    yield f"{counts.lines} lines, {state}: {counts_text(counts)}"
    for why, n in sorted(counts.skipped.items()):
        yield f"  skipped at the snapshot, {why}: {n}"
    for status, n in sorted(counts.messages.items()):
        yield f"  messages {status}: {n}"
    if failures:
        yield "not sent, or not delivered, by line:"
    for failure in failures:
        where = f"line {failure.line}" if failure.line is not None else "line ?"
        code = f" ({failure.code})" if failure.code else ""
        reason = f": {failure.reason}" if failure.reason else ""
        yield f"  {where}: {failure.status}{code}{reason}"
