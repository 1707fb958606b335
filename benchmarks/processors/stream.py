"""Generated event streams: the benchmark's (N distinct events of a realistic mix, with retractions and
duplicates) and, through `distinct_events` with a denser `Shape`, the processor tests'."""

from __future__ import annotations

import os
import pickle
import random
import tempfile
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from schemas.cloudevents import KafkaRecord
    from schemas.events.base import Event

T = TypeVar("T")

START = datetime(2025, 1, 1, tzinfo=UTC)
FUTURE_ALLOWANCE_S = 5 * 365 * 86_400
BENCHMARK_COUNTRIES = ("AR", "BO", "BR", "CL", "CO", "MX", "PE", "UY")


@dataclass(frozen=True)
class Shape:
    """How many learners, firms, courses and days a generated stream's events share.

    Few of each make dense cells (tests of retractions and latest reports); many make a realistic spread.

    Attributes:
        days: Events fall in this many days from `START`.
        learners: Distinct learners who enrol.
        firms: Distinct firms in deals and meetings.
        offerings: Course offerings (cohorts); offering n belongs to course n % `courses`.
        courses: Distinct courses.
        activities: Promotion activities (rounds) that costs and meetings belong to.
        deals: Distinct deals, each reported again and again.
        countries: Member states events are placed in.
        cents: Amounts with cents, so sums are checked to the cent (whole dollars otherwise).
    """

    days: int
    learners: int
    firms: int
    offerings: int
    courses: int
    activities: int
    deals: int
    countries: tuple[str, ...]
    cents: bool = False

    @classmethod
    def realistic(cls, count: int) -> Shape:
        """The benchmark's shape for a stream of `count` events."""
        return cls(
            days=720,
            learners=max(100, count // 10),
            firms=max(20, count // 200),
            offerings=120,
            courses=40,
            activities=30,
            deals=max(50, count // 50),
            countries=BENCHMARK_COUNTRIES,
        )


def generate(count: int, seed: int) -> list[Any]:
    """`count` distinct events plus ~1 % retractions and ~2 % duplicates, in a shuffled-in-time order."""
    return list(iter_stream(count, seed))


def iter_stream(count: int, seed: int, *, duplicate_window: int | None = None) -> Iterator[Any]:
    """The events of `generate`, one at a time.

    Each duplicate repeats a record drawn from those before it: from all of them by default (so the
    whole stream is held, and a seed gives the stream the published numbers were measured on), or with
    `duplicate_window`, from the last that many (memory stays bounded whatever `count`, for streams too
    large to hold; the draws differ from the default's once more records than the window came before).
    """
    held: deque[Any] = deque(maxlen=duplicate_window)
    return _drawn(count, seed, held, lambda event: event)


def iter_records(
    count: int, seed: int, topic_of: Callable[[Event], str], *, duplicate_window: int | None = None
) -> Iterator[tuple[str, KafkaRecord]]:
    """The stream of `iter_stream` as (topic, encoded record), with its duplicates held as encoded records:
    without `duplicate_window` every record is spilled to a temporary file (only its offset stays in
    memory), so the exact stream of a seed costs disk, not memory, whatever `count`."""
    from schemas.cloudevents import encode

    def encoded(event: Event) -> tuple[str, KafkaRecord]:
        return topic_of(event), encode(event)

    if duplicate_window is not None:
        window: deque[tuple[str, KafkaRecord]] = deque(maxlen=duplicate_window)
        yield from _drawn(count, seed, window, encoded)
        return
    with tempfile.TemporaryFile(prefix="alcance-stream-") as file:
        yield from _drawn(count, seed, _Spilled(file), encoded)


class _Held(Protocol[T]):
    """The records before the current one, as duplicates draw from them (`random.choice` reads only
    the length and the drawn position, so any holder gives the same draws)."""

    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> T: ...
    def append(self, item: T) -> None: ...


class _Spilled:
    """Encoded records appended to a file; only their offsets are held (8 bytes each)."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self._offsets = array("q")

    def __len__(self) -> int:
        return len(self._offsets)

    def __getitem__(self, index: int) -> tuple[str, KafkaRecord]:
        self._file.seek(self._offsets[index])
        found: tuple[str, KafkaRecord] = pickle.load(self._file)  # noqa: S301 - written by this process
        self._file.seek(0, os.SEEK_END)
        return found

    def append(self, item: tuple[str, KafkaRecord]) -> None:
        self._offsets.append(self._file.tell())
        pickle.dump(item, self._file, protocol=pickle.HIGHEST_PROTOCOL)


def _drawn(count: int, seed: int, held: _Held[T], convert: Callable[[Event], T]) -> Iterator[T]:
    from tests.schemas.factories import make_training_event_retracted

    rng = random.Random(seed)
    # The retractions and duplicates draw from the same generator between events, as they always have.
    for i, event in enumerate(distinct_events(rng, count, Shape.realistic(count))):
        item = convert(event)
        yield item
        held.append(item)
        if rng.random() < 0.01 and event.family == "training":
            retraction = convert(
                make_training_event_retracted(
                    record_identity=f"x{i}",
                    source=event.source,
                    source_ref=f"{event.source_ref}-deleted",
                    subject_key=event.subject_key,
                    retracted_event_id=event.event_id,
                    occurred_at=event.occurred_at,
                )
            )
            yield retraction
            held.append(retraction)
        if rng.random() < 0.02:
            duplicate = rng.choice(held)
            yield duplicate
            held.append(duplicate)


def distinct_events(rng: random.Random, count: int, shape: Shape) -> Iterator[Event]:
    """`count` distinct events of every family at random times: enrolments, completions, certificates,
    progress, costs, deal reports and meetings (30, 12, 8, 20, 10, 10 and 10 %)."""
    from schemas.events.plgn import Wave
    from tests.schemas.factories import (
        make_certificate_issued,
        make_cost_recorded,
        make_deal_reported,
        make_enrolment_completed,
        make_enrolment_created,
        make_meeting_held,
        make_progress_recorded,
        money,
        org_key,
        person_key,
    )

    def amount(top: int) -> str:
        return (
            f"{rng.randrange(1, top)}.{rng.randrange(100):02d}"
            if shape.cents
            else f"{rng.randrange(1, top)}.00"
        )

    learners = [person_key(f"l{i}") for i in range(shape.learners)]
    firms = [org_key(f"f{i}") for i in range(shape.firms)]
    enrolments: list[tuple[str, str]] = []
    for i in range(count):
        at = START + timedelta(days=rng.randrange(shape.days), seconds=rng.randrange(86_400))
        kind = rng.random()
        rid = f"b{i}"
        event: Event
        if kind < 0.30 or not enrolments:
            learner = rng.choice(learners)
            offering = rng.randrange(shape.offerings)
            enrolments.append((f"e{i}", learner))
            event = make_enrolment_created(
                record_identity=rid,
                occurred_at=at,
                enrolled_at=at,
                subject_key=learner,
                enrolment_id=f"e{i}",
                course_id=f"course-{offering % shape.courses}",
                offering_id=f"offering-{offering}",
                country=rng.choice(shape.countries),
            )
        elif kind < 0.42:
            enrolment, learner = rng.choice(enrolments)
            event = make_enrolment_completed(
                record_identity=rid,
                occurred_at=at,
                completed_at=at,
                subject_key=learner,
                enrolment_id=enrolment,
            )
        elif kind < 0.50:
            enrolment, learner = rng.choice(enrolments)
            event = make_certificate_issued(
                record_identity=rid,
                occurred_at=at,
                issued_at=at,
                subject_key=learner,
                enrolment_id=enrolment,
                certificate_id=f"c-{enrolment}",
            )
        elif kind < 0.70:
            enrolment, learner = rng.choice(enrolments)
            event = make_progress_recorded(
                record_identity=rid, occurred_at=at, subject_key=learner, enrolment_id=enrolment
            )
        elif kind < 0.80:
            event = make_cost_recorded(
                record_identity=rid,
                occurred_at=at,
                cost_id=f"cost-{i}",
                activity_id=f"round-{rng.randrange(shape.activities)}",
                money=money(amount(50_000)),
            )
        elif kind < 0.90:
            deal = rng.randrange(shape.deals)
            event = make_deal_reported(
                record_identity=rid,
                occurred_at=at,
                deal_id=f"deal-{deal}",
                org_key=firms[deal % len(firms)],
                wave=rng.choice(list(Wave)),
                realised_value_cumulative=money(amount(90_000)),
            )
        else:
            event = make_meeting_held(
                record_identity=rid,
                occurred_at=at,
                slot_at=at,
                meeting_id=f"m{i}",
                activity_id=f"round-{rng.randrange(shape.activities)}",
                org_a_key=rng.choice(firms),
                org_b_key=rng.choice(firms),
                country=rng.choice(shape.countries),
            )
        yield event
