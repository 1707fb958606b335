"""The benchmarks' generated stream: the same records for a seed as the figures were measured on, and a
bounded duplicate window that holds only what it says."""

from __future__ import annotations

import hashlib
from itertools import islice
from pathlib import Path

import pytest

from benchmarks.processors.stream import generate, iter_records, iter_stream
from benchmarks.read_model import PRODUCING, _mark_count, _marked_count
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


def test_the_encoded_stream_spilled_to_disk_is_the_published_one_record_for_record() -> None:
    records = list(iter_records(5000, 503, lambda event: event.family))
    digest = hashlib.sha256()
    for _, record in records:
        digest.update(record.value)
    assert (len(records), digest.hexdigest()) == PUBLISHED_5000_503
    expected = generate(5000, 503)
    assert [topic for topic, _ in records] == [event.family for event in expected]
    assert [record for _, record in records] == [encode(event) for event in expected]


def test_the_encoded_stream_with_a_window_draws_as_the_event_stream_does() -> None:
    events = list(iter_stream(20_000, 7, duplicate_window=50))
    records = list(iter_records(20_000, 7, lambda event: event.family, duplicate_window=50))
    assert [record for _, record in records] == [encode(event) for event in events]


def test_a_kept_store_stopped_while_producing_is_refused_not_produced_again(tmp_path: Path) -> None:
    marker = tmp_path / "bench_read_5000_503.records"
    assert _marked_count(marker) is None
    _mark_count(marker, PRODUCING)
    with pytest.raises(SystemExit, match="stopped while producing"):
        _marked_count(marker)
    _mark_count(marker, 5140)
    assert _marked_count(marker) == 5140


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
