"""The peers' per-learner counting: repeats, retractions and their order, as alcance counts them."""

from __future__ import annotations

from typing import Any

from benchmarks.peers.cells import add_up, apply_event, new_state


def _enrolment(event_id: str, country: str = "AR", at: str = "2025-03-14T10:00:00Z") -> dict[str, Any]:
    return {
        "event_type": "cvf.enrolment.created",
        "event_id": event_id,
        "country": country,
        "enrolled_at": at,
    }


def _retraction(event_id: str, target: str) -> dict[str, Any]:
    return {"event_type": "cvf.event.retracted", "event_id": event_id, "retracted_event_id": target}


def test_a_learners_first_enrolment_in_a_cell_counts_them_once_and_the_second_only_as_an_enrolment() -> None:
    state = new_state()
    assert apply_event(state, _enrolment("a")) == ("AR", "2025-03", 1, 1)
    assert apply_event(state, _enrolment("b", at="2025-03-30T23:59:59Z")) == ("AR", "2025-03", 1, 0)
    assert apply_event(state, _enrolment("c", country="BR")) == ("BR", "2025-03", 1, 1)


def test_a_repeated_record_changes_nothing() -> None:
    state = new_state()
    apply_event(state, _enrolment("a"))
    assert apply_event(state, _enrolment("a")) is None
    apply_event(state, _retraction("x", "a"))
    assert apply_event(state, _retraction("x", "a")) is None
    assert apply_event(state, _enrolment("a")) is None, "a repeat of a retracted enrolment stays retracted"


def test_a_retraction_takes_the_enrolment_and_the_last_one_takes_the_learner_out() -> None:
    state = new_state()
    apply_event(state, _enrolment("a"))
    apply_event(state, _enrolment("b"))
    assert apply_event(state, _retraction("x", "a")) == ("AR", "2025-03", -1, 0)
    assert apply_event(state, _retraction("y", "b")) == ("AR", "2025-03", -1, -1)


def test_a_retraction_before_its_enrolment_keeps_it_from_counting() -> None:
    state = new_state()
    assert apply_event(state, _retraction("x", "a")) is None
    assert apply_event(state, _enrolment("a")) is None


def test_other_training_events_leave_the_state_alone() -> None:
    state = new_state()
    progress = {"event_type": "cvf.progress.recorded", "event_id": "p"}
    assert apply_event(state, progress) is None
    assert state == new_state()


def test_a_batch_of_deltas_adds_up_per_cell_in_key_order_without_empty_cells() -> None:
    deltas = [
        ("BR", "2025-03", 1, 1),
        ("AR", "2025-03", 1, 1),
        ("AR", "2025-03", -1, -1),
        ("AR", "2025-04", 2, 1),
    ]
    assert add_up(deltas) == [("AR", "2025-04", 2, 1), ("BR", "2025-03", 1, 1)]
