"""`Prefer: wait=N` (RFC 7240, section 4.3): a caller that wants the messages' ids in the
answer asks the API to wait up to N seconds for the event's flows to run.

    Prefer: wait=5                 wait up to 5 s
    Prefer: respond-async, wait=5  the same (the answer is always 202)

Palabre waits at most MAX_WAIT seconds whatever is asked, and says how long it was willing
to wait in `Preference-Applied`. A preference it cannot read is ignored, as the RFC asks.
"""

from __future__ import annotations

from collections.abc import Iterable

MAX_WAIT = 10  # seconds: a caller that needs longer reads the status_url later


def preferred_wait(headers: Iterable[str]) -> int:
    """The seconds to wait that the `Prefer` header values ask for, capped; 0 for none."""
    for header in headers:
        for preference in header.split(","):
            name, _, value = preference.split(";")[0].partition("=")
            value = value.strip().strip('"')
            if name.strip().lower() != "wait":
                continue
            if value.isascii() and value.isdigit():  # never int() of a huge number
                return MAX_WAIT if len(value) > 3 else min(int(value), MAX_WAIT)
    return 0
