"""The benchmarks' generated stream: the same records for a seed as the figures were measured on, and a
bounded duplicate window that holds only what it says."""

from __future__ import annotations

import hashlib
from itertools import islice

from benchmarks.processors.stream import generate, iter_stream
from schemas.cloudevents import encode

# The digest of the encoded records of `generate(5000, 503)` as published benchmark figures were
# measured on: a change to the generator's draws changes it.
PUBLISHED_5000_503 = (5140, "e086aee628d55ba5fd7e550694971a8b708190715ba77ffd97c1d0c2b3eb73bf")


def _digest(events: list[object]) -> tuple[int, str]:
    digest = hashlib.sha256()
    for event in events:
        digest.update(encode(event).value)  # type: ignore[arg-type]
    return len(events), digest.hexdigest()


def test_the_stream_of_a_seed_is_the_one_published_figures_were_measured_on() -> None:
    assert _digest(generate(5000, 503)) == PUBLISHED_5000_503
    assert _digest(list(iter_stream(5000, 503))) == PUBLISHED_5000_503


def test_a_window_as_large_as_the_stream_draws_the_same_duplicates() -> None:
    assert _digest(list(iter_stream(5000, 503, duplicate_window=10_000))) == PUBLISHED_5000_503


def test_with_a_small_window_every_duplicate_repeats_one_of_the_last_records() -> None:
    window = 50
    last_at: dict[str, int] = {}
    duplicates = 0
    for position, event in enumerate(iter_stream(20_000, 7, duplicate_window=window)):
        identity = event.event_id
        if identity in last_at:
            # The record it repeats was among the last `window` yielded.
            assert position - last_at[identity] <= window
            duplicates += 1
        last_at[identity] = position
    assert duplicates > 100


def test_the_stream_is_generated_lazily() -> None:
    stream = iter_stream(1_000_000, 503, duplicate_window=1_000)
    assert len(list(islice(stream, 1_000))) == 1_000
