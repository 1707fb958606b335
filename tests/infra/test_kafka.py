"""Kafka client helpers: partitioning as Kafka's default partitioner does it."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from infra.kafka import KeyHashPartitioner

partition_lists = st.lists(st.integers(0, 500), min_size=1, max_size=64, unique=True).map(sorted)


@given(keys=st.lists(st.binary(max_size=200), min_size=1, max_size=20), partitions=partition_lists)
def test_a_keyed_record_goes_where_the_default_partitioner_sends_it(
    keys: list[bytes], partitions: list[int]
) -> None:
    ours = KeyHashPartitioner(cache_size=8)
    default = DefaultPartitioner()
    # Twice over, so the second pass answers from the cache.
    for key in keys + keys:
        assert ours(key, partitions, partitions) == default(key, partitions, partitions)


def test_a_record_without_key_goes_to_an_available_partition() -> None:
    ours = KeyHashPartitioner()
    random.seed(5)
    picks = {ours(None, [0, 1, 2, 3], [1, 3]) for _ in range(200)}
    assert picks == {1, 3}
    assert {ours(None, [0, 1, 2], []) for _ in range(200)} == {0, 1, 2}
