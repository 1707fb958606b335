"""The dead-letter headers: built by their home module only, each described in the AsyncAPI document."""

from __future__ import annotations

from infra.dead_letters import bound_dead_letter
from schemas import asyncapi, deadletter


def test_every_header_a_dead_letter_can_carry_is_documented() -> None:
    small = bound_dead_letter(b"{}", b"k", [], deadletter.for_source_record("bad", "lrs", redacted=True))
    large = bound_dead_letter(
        b"x" * (2**20), b"k", [("own", b"y" * (2**15))], deadletter.for_consumer_record("bad", "t", 1, 7)
    )
    names = {name for record in (small, large) for name, _ in record.headers}
    assert names == set(deadletter.HEADERS)
    documented = asyncapi.build()["components"]["messages"]["deadLetter"]["headers"]["properties"]
    assert documented.keys() == deadletter.HEADERS.keys()


def test_the_headers_say_why_and_where_from() -> None:
    assert dict(deadletter.for_source_record("no actor", "cvf-lrs", redacted=False)) == {
        "dlq_reason": b"no actor",
        "dlq_source": b"cvf-lrs",
        "dlq_raw_record": b"true",
    }
    assert dict(deadletter.for_consumer_record("not JSON", "cvf", 2, 41)) == {
        "dlq_reason": b"not JSON",
        "dlq_source_topic": b"cvf",
        "dlq_source_partition": b"2",
        "dlq_source_offset": b"41",
    }
