"""Reads pause the cyclic garbage collector, and concurrent reads hand the pause on correctly."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from processors.read import cyclic_gc_paused


@pytest.fixture
def collector_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    if enabled:
        gc.enable()
    else:
        gc.disable()


@pytest.mark.usefixtures("collector_restored")
def test_a_read_pauses_the_collector_and_resumes_it() -> None:
    gc.enable()
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


@pytest.mark.usefixtures("collector_restored")
def test_the_collector_resumes_even_when_the_read_fails() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), cyclic_gc_paused():
        raise RuntimeError("read failed")
    assert gc.isenabled()


@pytest.mark.usefixtures("collector_restored")
async def test_overlapping_reads_keep_it_paused_until_the_last_ends() -> None:
    gc.enable()
    first_in = asyncio.Event()
    first_may_end = asyncio.Event()
    seen: list[bool] = []

    async def first() -> None:
        with cyclic_gc_paused():
            first_in.set()
            await first_may_end.wait()

    async def second() -> None:
        await first_in.wait()
        with cyclic_gc_paused():
            first_may_end.set()
            await asyncio.sleep(0.01)  # the first read ends meanwhile
            seen.append(gc.isenabled())

    await asyncio.gather(first(), second())
    assert seen == [False], "the first read to end must not resume it under the second"
    assert gc.isenabled()


@pytest.mark.usefixtures("collector_restored")
def test_a_collector_disabled_by_the_application_stays_disabled() -> None:
    gc.disable()
    with cyclic_gc_paused():
        pass
    assert not gc.isenabled()
