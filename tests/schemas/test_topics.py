"""The topic catalogue builds every name from its prefix and routes each event family to its topic."""

from __future__ import annotations

import pytest

from infra.settings import load_settings
from schemas.events.base import Event
from schemas.registry import ALL_EVENT_CLASSES
from schemas.topics import FAMILIES, TopicCatalogue
from tests.schemas.factories import make_cost_recorded, make_deal_reported, make_enrolment_created


def test_default_names() -> None:
    catalogue = TopicCatalogue()
    assert catalogue.training.name == "alcance.cvf.events.v1"
    assert catalogue.plgn.name == "alcance.plgn.events.v1"
    assert catalogue.finance.name == "alcance.finance.costs.v1"
    assert catalogue.indicators.name == "alcance.indicators.v1"
    assert catalogue.log_identity.name == "alcance.log-identity.v1"
    assert catalogue.dead_letter(catalogue.training).name == "alcance.cvf.events.v1.dlq"
    assert catalogue.indicators_group == "alcance.indicators"


def test_prefix_and_partitions_apply_everywhere() -> None:
    catalogue = TopicCatalogue(prefix="t1234.", partitions=2)
    assert all(spec.name.startswith("t1234.") for spec in catalogue.all())
    assert catalogue.consumer_group("x") == "t1234.x"
    assert catalogue.indicators_group == "t1234.indicators"
    assert [spec.partitions for spec in catalogue.input_topics()] == [2, 2, 2]
    assert catalogue.indicators.partitions == 2
    assert catalogue.log_identity.partitions == 1


def test_policies() -> None:
    catalogue = TopicCatalogue()
    assert catalogue.indicators.cleanup_policy == "compact"
    assert catalogue.indicators.retention_ms is None
    assert all(spec.cleanup_policy == "delete" for spec in catalogue.input_topics())
    assert catalogue.log_identity.retention_ms == -1
    for spec in catalogue.all():
        assert spec.key and spec.schema and spec.description


def test_all_lists_each_topic_once_with_dead_letters_of_the_inputs() -> None:
    catalogue = TopicCatalogue()
    names = [spec.name for spec in catalogue.all()]
    assert len(names) == len(set(names)) == 8
    for spec in catalogue.input_topics():
        assert catalogue.dead_letter(spec).name in names


def test_from_settings_uses_kafka_prefix_and_partitions() -> None:
    settings = load_settings(kafka={"topic_prefix": "tabc.", "partitions": 3})
    catalogue = TopicCatalogue.from_settings(settings)
    assert catalogue == TopicCatalogue(prefix="tabc.", partitions=3)


@pytest.mark.parametrize(
    ("event", "topic"),
    [
        (make_enrolment_created(), "alcance.cvf.events.v1"),
        (make_deal_reported(), "alcance.plgn.events.v1"),
        (make_cost_recorded(), "alcance.finance.costs.v1"),
    ],
)
def test_topic_for_routes_by_family(event: Event, topic: str) -> None:
    catalogue = TopicCatalogue()
    assert catalogue.topic_for(event).name == topic
    assert catalogue.topic_for(type(event)).name == topic


def test_every_event_class_has_a_topic() -> None:
    catalogue = TopicCatalogue()
    for cls in ALL_EVENT_CLASSES:
        assert cls.family in FAMILIES
        assert catalogue.topic_for(cls) in catalogue.input_topics()


def test_unknown_family_is_an_error() -> None:
    with pytest.raises(KeyError, match="survey"):
        TopicCatalogue().family_topic("survey")
