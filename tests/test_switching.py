"""`palabre serve` and `palabre worker` hand the GIL over sooner (palabre.switching)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from palabre.switching import SWITCH_SECONDS, hand_over_sooner


@pytest.fixture
def restored_interval() -> Iterator[None]:
    interval = sys.getswitchinterval()
    yield
    sys.setswitchinterval(interval)


def test_the_switch_interval_is_a_millisecond(restored_interval):
    hand_over_sooner()
    assert sys.getswitchinterval() == pytest.approx(SWITCH_SECONDS)
    assert SWITCH_SECONDS < 0.005, "sooner than CPython's default"
