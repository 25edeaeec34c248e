"""The interpreter's thread switch interval for `palabre serve` and `palabre worker`: the
database's thread gets the GIL back within a millisecond, not five.

Each SQLite file is worked by one thread (palabre.db.thread), which lets go of the GIL
inside each SQLite call and needs it back after, several times per transaction. While
the event loop is busy, CPython hands the GIL over only when the holder waits or after
the switch interval, 5 ms by default: a transaction could wait up to 5 ms after each
call, and the requests waiting on its commit with it, while the loop ran out of work and
sat idle. (PostgreSQL is reached without a thread of ours.)

Under the events API benchmark (benchmarks/events_api.py), with 1 ms Palabre's server
used more than one core (its database thread alongside the loop), and its slowest round
against the floor rose from 0.77 to 0.83. The README has the figures.
"""

from __future__ import annotations

import sys

SWITCH_SECONDS = 0.001  # CPython's default is 0.005


def hand_over_sooner() -> None:
    """Set the interpreter's switch interval to SWITCH_SECONDS."""
    sys.setswitchinterval(SWITCH_SECONDS)
