"""Did-you-mean suggestions for names typed wrong."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, known: Iterable[str]) -> str:
    """A hint naming the closest known word, or listing them all when none is close."""
    options = sorted(known)
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if match:
        return f"did you mean '{match[0]}'?"
    return f"known: {', '.join(options)}" if options else ""


def known_list(known: Iterable[str]) -> str:
    """`(known: a, b, c)` content listing the names that exist."""
    return f"known: {', '.join(sorted(known))}"


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """ "did you mean 'x'?" when a known word is close, else ""."""
    match = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.6)
    return f"did you mean '{match[0]}'?" if match else ""
