"""The seeded world generator: deterministic, realistic in shape, and the ground truth of the LRS."""

from __future__ import annotations

from connectors.simulators.generator import ART7_AUDIENCES, MEMBER_STATES, generate
from connectors.simulators.xapi_lrs import statements_from_world


def test_same_seed_same_world_other_seed_other_world() -> None:
    assert generate(1, learners=40) == generate(1, learners=40)
    assert generate(1, learners=40) != generate(2, learners=40)


def test_world_covers_member_states_audiences_and_every_outcome() -> None:
    world = generate(503, scale=1)
    assert len(MEMBER_STATES) == 13
    assert {learner.country for learner in world.learners} <= set(MEMBER_STATES)
    assert set(ART7_AUDIENCES) <= {learner.audience for learner in world.learners}
    enrolments = world.enrolments
    assert any(e.withdrawn_at for e in enrolments) and any(e.certificate for e in enrolments)
    assert any(e.assessment and not e.assessment[2] for e in enrolments), "some fail"
    for e in enrolments:
        offering = world.offering(e.offering_id)
        assert offering.starts_at < offering.ends_at
        if e.completed_at is not None:
            assert e.assessment is not None and e.assessment[2] and e.completed_at > e.enrolled_at
    assert world.firms and world.authorisations and world.opportunities and world.contacts
    assert any(m.status == "HELD" for m in world.meetings) and any(
        m.status == "NO_SHOW" for m in world.meetings
    )
    assert world.deals and all(d.usd_amount > 0 for d in world.deals)
    assert {c.offering_id for c in world.costs if c.offering_id} == {o.offering_id for o in world.offerings}


def test_statements_come_with_their_ground_truth() -> None:
    statements, truths = statements_from_world(generate(9, learners=30), seed=9)
    assert sorted(t.statement_id for t in truths) == sorted(s["id"] for s in statements)
    assert len({s["id"] for s in statements}) == len(statements)
    stored = [s["stored"] for s in statements]
    assert stored == sorted(stored)
    assert any(t.expected is None for t in truths), "some verbs are not measured"
    replays = [t for t in truths if t.duplicate_of]
    assert replays
    by_id = {t.statement_id: t for t in truths}
    assert all(by_id[t.duplicate_of or ""].expected == t.expected for t in replays)
