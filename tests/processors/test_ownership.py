"""The partition ledger's rules, stated without a broker or a store."""

from __future__ import annotations

from processors.ownership import PartitionLedger

TP = ("alcance.cvf.events.v1", 0)
OTHER = ("alcance.cvf.events.v1", 1)


def test_a_claim_owns_the_partition_from_its_stored_offset_under_its_epoch() -> None:
    ledger = PartitionLedger()
    ledger.claimed(TP, 40, 3)
    assert ledger.owned[TP] == (40, 3)
    assert ledger.read_from(TP) == 40
    assert ledger.serial(TP) == 1


def test_decoded_records_are_not_decoded_again_while_their_batch_commits() -> None:
    ledger = PartitionLedger()
    ledger.claimed(TP, 40, 3)
    ledger.decoded(TP, 55)
    assert ledger.read_from(TP) == 55
    assert ledger.owned[TP] == (40, 3)  # committed offset unchanged until the commit


def test_a_commit_moves_the_committed_offset_only_of_partitions_still_owned() -> None:
    ledger = PartitionLedger()
    ledger.claimed(TP, 40, 3)
    ledger.committed(TP, (55, 3))
    ledger.committed(OTHER, (9, 1))
    assert ledger.owned == {TP: (55, 3)}


def test_a_claim_during_a_fetch_is_seen_against_the_snapshot_taken_before() -> None:
    ledger = PartitionLedger()
    ledger.claimed(TP, 40, 3)
    before = ledger.serials()
    assert not ledger.claimed_during(TP, before)
    ledger.claimed(TP, 38, 4)
    assert ledger.claimed_during(TP, before)
    assert ledger.claimed_during(OTHER, before) is False


def test_a_rewind_returns_to_the_committed_offset() -> None:
    ledger = PartitionLedger()
    ledger.claimed(TP, 40, 3)
    ledger.decoded(TP, 70)
    assert ledger.rewind(TP) == 40
    assert ledger.read_from(TP) == 40


def test_a_batch_is_stale_for_partitions_lost_reclaimed_or_under_another_epoch() -> None:
    ledger = PartitionLedger()
    ledger.claimed(TP, 0, 1)
    ledger.claimed(OTHER, 0, 1)
    serials = ledger.serials()
    positions = {TP: (10, 1), OTHER: (10, 1)}
    assert ledger.stale(positions, serials) == set()
    ledger.claimed(OTHER, 0, 2)  # our own claim in between: new serial and epoch
    assert ledger.stale(positions, serials) == {OTHER}
    ledger.lost(TP, now=5.0)
    assert ledger.stale(positions, serials) == {TP, OTHER}


def test_a_stale_batch_is_detected_by_the_serial_even_when_the_epoch_matches() -> None:
    ledger = PartitionLedger()
    ledger.claimed(TP, 0, 1)
    serials = ledger.serials()
    ledger.claimed(TP, 0, 1)
    assert ledger.stale({TP: (10, 1)}, serials) == {TP}


def test_an_unowned_assigned_partition_is_due_for_a_claim_only_after_the_grace_period() -> None:
    ledger = PartitionLedger()
    ledger.claimed(OTHER, 0, 1)
    assert ledger.due_for_claim([TP, OTHER], now=100.0, grace_s=10.0) == []
    assert ledger.due_for_claim([TP, OTHER], now=109.9, grace_s=10.0) == []
    assert ledger.due_for_claim([TP, OTHER], now=110.0, grace_s=10.0) == [TP]


def test_records_of_an_unowned_partition_start_its_grace_period_once() -> None:
    ledger = PartitionLedger()
    ledger.seen_unowned(TP, 50.0)
    ledger.seen_unowned(TP, 58.0)
    assert ledger.due_for_claim([TP], now=60.0, grace_s=10.0) == [TP]


def test_a_lost_partition_starts_its_grace_period_when_lost_and_a_claim_ends_it() -> None:
    ledger = PartitionLedger()
    ledger.claimed(TP, 0, 1)
    ledger.lost(TP, now=20.0)
    assert TP not in ledger.owned
    assert ledger.due_for_claim([TP], now=25.0, grace_s=10.0) == []
    ledger.claimed(TP, 7, 2)
    assert ledger.due_for_claim([TP], now=1000.0, grace_s=10.0) == []
    ledger.revoked(TP)
    assert TP not in ledger.owned
    assert ledger.due_for_claim([TP], now=1000.0, grace_s=10.0) == []  # grace starts now
    assert ledger.due_for_claim([TP], now=1010.0, grace_s=10.0) == [TP]
