"""`Prefer: wait=N` read from the header's values (RFC 7240): what the caller asks, capped
at MAX_WAIT, and 0 for anything else, whatever the header holds."""

from __future__ import annotations

import random

import pytest

from palabre.api.prefer import MAX_WAIT, preferred_wait


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ([], 0),
        (["wait=5"], 5),
        (["respond-async, wait=5"], 5),
        (["Wait = 3"], 3),
        (['wait="4"'], 4),
        (["wait=4; foo=bar"], 4),
        (["return=minimal", "wait=2"], 2),
        (["wait=0"], 0),
        ([f"wait={MAX_WAIT + 1}"], MAX_WAIT),
        (["wait=" + "9" * 5000], MAX_WAIT),
        (["wait=soon", "wait=2"], 2),
        (["wait=-1"], 0),
        (["wait=1.5"], 0),
        (["wait=٣"], 0),  # an Arabic-Indic digit: isdigit() says yes, the RFC says no
        (["waiting=5"], 0),
        (["respond-async"], 0),
    ],
)
def test_the_wait_asked_is_read_and_capped(headers, seconds):
    assert preferred_wait(headers) == seconds


def test_any_header_gives_a_wait_within_bounds():
    rng = random.Random(7240)
    alphabet = 'wait=, ;"0123456789٣\x00é-'
    for _ in range(5000):
        header = "".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))
        assert 0 <= preferred_wait([header]) <= MAX_WAIT, repr(header)
