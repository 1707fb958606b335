"""The collector schedule of pipeline processes: start-up objects frozen, young collections rarer."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from infra.collector import MIDDLE_THRESHOLD, OLD_THRESHOLD, YOUNG_THRESHOLD, settle_collector


class _Node:
    next: _Node | None = None


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_collector")
def test_settled_collector_freezes_start_up_and_still_collects_cycles() -> None:
    settle_collector()

    assert gc.get_threshold() == (YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
    assert gc.get_freeze_count() > 0
    # A cycle made after start-up is still garbage the collector finds, in a young collection.
    node = _Node()
    node.next = node
    alive = weakref.ref(node)
    del node
    assert alive() is not None
    gc.collect(0)
    assert alive() is None
    assert gc.isenabled()
