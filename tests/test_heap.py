"""`palabre serve` settles the heap once start-up is done (palabre.heap)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from palabre.heap import YOUNG_THRESHOLD, settle_heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def walked(thing: object) -> bool:
    """Whether a collection would walk `thing` (frozen objects are in no generation)."""
    return any(found is thing for found in gc.get_objects())


def test_settling_takes_the_start_up_heap_out_of_later_collections(restored_gc):
    made_at_start_up: list[object] = [{}]
    assert walked(made_at_start_up)
    settle_heap()
    assert not walked(made_at_start_up), "frozen: no later collection walks it"
    made_by_a_request: list[object] = [{}]
    assert walked(made_by_a_request), "what comes later is collected as usual"
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
