"""Batch preparation, stated without a broker or a store: records in, facts, dead letters and deltas out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiokafka import ConsumerRecord, TopicPartition

from infra.settings import Settings
from processors.admission import Admission
from processors.batch import BatchPreparer, PreparedBatch
from processors.deltas import expected_deltas
from processors.indicators import contributions
from processors.ownership import PartitionLedger
from schemas.cloudevents import KafkaRecord, encode
from schemas.events.base import Event
from schemas.topics import TopicCatalogue
from tests.schemas.factories import make_enrolment_created

CATALOGUE = TopicCatalogue.from_settings(Settings())


def preparer() -> BatchPreparer:
    return BatchPreparer(Admission.from_settings(Settings()), contributions)


def consumer_record(tp: TopicPartition, offset: int, record: KafkaRecord) -> ConsumerRecord:
    return ConsumerRecord(
        tp.topic, tp.partition, offset, 0, 0, record.key, record.value, None, 0, 0, record.headers
    )


def batch_of(tp: TopicPartition, events: list[Event], first: int = 0) -> list[ConsumerRecord]:
    return [consumer_record(tp, first + i, encode(event)) for i, event in enumerate(events)]


def enrolments(count: int) -> list[Event]:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    return [
        make_enrolment_created(
            enrolment_id=f"e-{i}", source_ref=f"e-{i}", occurred_at=at + timedelta(hours=i)
        )
        for i in range(count)
    ]


def topic_of(event: Event) -> TopicPartition:
    return TopicPartition(CATALOGUE.topic_for(event).name, 0)


def test_owned_records_become_facts_with_parts_positions_and_expected_deltas() -> None:
    events = enrolments(3)
    tp = topic_of(events[0])
    ledger = PartitionLedger()
    ledger.claimed((tp.topic, 0), 10, 4)
    prepared = preparer().prepare({tp: batch_of(tp, events, first=10)}, ledger, ledger.serials(), 0.0)
    assert [fact.offset for fact in prepared.facts] == [10, 11, 12]
    assert all(fact.parts and fact.parts_json for fact in prepared.facts)
    assert prepared.positions == {(tp.topic, 0): (13, 4)}
    assert prepared.serials == {(tp.topic, 0): 1}
    assert prepared.expected == expected_deltas(prepared.facts)
    assert ledger.read_from((tp.topic, 0)) == 13
    assert ledger.owned[(tp.topic, 0)] == (10, 4)  # committed only when the batch commits


def test_records_below_the_read_position_are_skipped_not_decoded_twice() -> None:
    events = enrolments(4)
    tp = topic_of(events[0])
    ledger = PartitionLedger()
    ledger.claimed((tp.topic, 0), 0, 1)
    ledger.decoded((tp.topic, 0), 2)
    prepared = preparer().prepare({tp: batch_of(tp, events)}, ledger, ledger.serials(), 0.0)
    assert prepared.skipped == 2
    assert prepared.records == 2
    assert [fact.offset for fact in prepared.facts] == [2, 3]


def test_a_duplicate_in_one_batch_is_a_fact_twice_but_counted_once_in_the_deltas() -> None:
    (event,) = enrolments(1)
    tp = topic_of(event)
    ledger = PartitionLedger()
    ledger.claimed((tp.topic, 0), 0, 1)
    prepared = preparer().prepare({tp: batch_of(tp, [event, event])}, ledger, ledger.serials(), 0.0)
    assert len(prepared.facts) == 2
    assert prepared.expected == expected_deltas(prepared.facts[:1])


def test_invalid_records_become_dead_letters_with_their_reason() -> None:
    (event,) = enrolments(1)
    tp = topic_of(event)
    ledger = PartitionLedger()
    ledger.claimed((tp.topic, 0), 0, 1)
    good = encode(event)
    broken = KafkaRecord(key=good.key, value=b"{not json", headers=good.headers)
    future = encode(make_enrolment_created(occurred_at=datetime.now(UTC) + timedelta(days=30)))
    records = [consumer_record(tp, 0, broken), consumer_record(tp, 1, future), consumer_record(tp, 2, good)]
    prepared = preparer().prepare({tp: records}, ledger, ledger.serials(), 0.0)
    assert [record.offset for record, _ in prepared.dead] == [0, 1]
    assert "future" in prepared.dead[1][1]
    assert prepared.dead[0][1]
    assert [fact.offset for fact in prepared.facts] == [2]
    assert prepared.positions == {(tp.topic, 0): (3, 1)}


def test_records_of_a_partition_not_owned_are_left_and_start_its_grace_period() -> None:
    events = enrolments(2)
    tp = topic_of(events[0])
    ledger = PartitionLedger()
    prepared = preparer().prepare({tp: batch_of(tp, events)}, ledger, ledger.serials(), now=7.0)
    assert prepared.facts == [] and prepared.positions == {}
    assert ledger.due_for_claim([(tp.topic, 0)], now=8.0, grace_s=1.0) == [(tp.topic, 0)]


def test_a_partition_claimed_during_the_fetch_is_rewound_to_its_stored_offset() -> None:
    events = enrolments(2)
    tp = topic_of(events[0])
    ledger = PartitionLedger()
    ledger.claimed((tp.topic, 0), 0, 1)
    before = ledger.serials()
    ledger.claimed((tp.topic, 0), 5, 2)
    prepared = preparer().prepare({tp: batch_of(tp, events)}, ledger, before, 0.0)
    assert prepared.facts == []
    assert prepared.rewind == [(tp, 5)]


def test_leaving_out_a_stale_partition_drops_its_records_and_the_precomputed_deltas() -> None:
    events = enrolments(2)
    tp = topic_of(events[0])
    ledger = PartitionLedger()
    ledger.claimed((tp.topic, 0), 0, 1)
    prepared: PreparedBatch = preparer().prepare({tp: batch_of(tp, events)}, ledger, ledger.serials(), 0.0)
    ledger.lost((tp.topic, 0), now=1.0)
    prepared.leave_out(ledger.stale(prepared.positions, prepared.serials))
    assert prepared.facts == [] and prepared.positions == {}
    assert prepared.dropped == 2
    assert prepared.expected is None
