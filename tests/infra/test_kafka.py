"""Kafka client helpers: partitioning as Kafka's default partitioner does it, topics from the catalogue."""

from __future__ import annotations

import dataclasses
import random

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from infra.kafka import KeyHashPartitioner, TopicCreationError, ensure_topics, topic_config, topic_partitions
from infra.settings import Settings
from schemas.topics import TopicCatalogue

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


async def test_topics_are_created_once_and_a_refused_topic_names_the_brokers_reason(
    settings: Settings,
) -> None:
    catalogue = TopicCatalogue.from_settings(settings)
    # The fixture created every topic of the catalogue already.
    assert await ensure_topics(settings.kafka, catalogue.all()) == set()
    fresh = dataclasses.replace(catalogue.finance, name=f"{settings.kafka.topic_prefix}fresh.v1")
    assert await ensure_topics(settings.kafka, [fresh]) == {fresh.name}
    assert [tp.partition for tp in await topic_partitions(settings.kafka, fresh.name)] == [0, 1]
    refused = dataclasses.replace(fresh, name=f"{settings.kafka.topic_prefix}refused.v1", retention_ms=-7)
    with pytest.raises(TopicCreationError, match=r"refused to create topic t\w+\.refused\.v1: .*retention"):
        await ensure_topics(settings.kafka, [refused])
    assert await topic_partitions(settings.kafka, refused.name) == []


async def test_each_topic_is_created_with_the_cleanup_policy_and_retention_of_the_catalogue(
    settings: Settings,
) -> None:
    catalogue = TopicCatalogue.from_settings(settings)
    for spec in catalogue.all():
        config = await topic_config(settings.kafka, spec.name)
        assert config["cleanup.policy"] == spec.cleanup_policy, spec.name
        if spec.retention_ms is not None:
            assert config["retention.ms"] == str(spec.retention_ms), spec.name
    assert (await topic_config(settings.kafka, catalogue.indicators.name))["cleanup.policy"] == "compact"
