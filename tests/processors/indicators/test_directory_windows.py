"""PLGN-16 counts a grant only inside its validity window, judged as the consent ledger judges it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from processors.indicators.aggregate import ReadContext, aggregate
from processors.indicators.base import PeriodKind
from processors.indicators.grouping import period_range
from processors.indicators.periods import order_key, window_of, with_window
from schemas.events.plgn import DirectoryAuthorisationGranted, DirectoryAuthorisationWithdrawn

from .reference import ReferenceStore
from .scenario import _make
from .world import org

PUBLISHED = datetime(2026, 1, 10, 12, tzinfo=UTC)


def _grant(name: str, **window: Any) -> DirectoryAuthorisationGranted:
    granted: DirectoryAuthorisationGranted = _make(
        DirectoryAuthorisationGranted,
        name,
        occurred_at=PUBLISHED,
        consent_id=name,
        org_key=org(1),
        recipients=["AR"],
        notice_version="v1",
        country="AR",
        **window,
    )
    return granted


def _authorised(
    events: list[DirectoryAuthorisationGranted | DirectoryAuthorisationWithdrawn],
    as_of: datetime,
    period: PeriodKind = "month",
) -> dict[date, int]:
    """Firms authorised for AR per period up to `as_of`'s (a period without any cell counts none)."""
    store = ReferenceStore()
    for event in events:
        store.apply(event)
    ctx = ReadContext(period=period, by=("country",), as_of=as_of, cohort_grace_days=14)
    cells = aggregate("PLGN-16", store.rows(period), ctx)
    found = {
        cell.period_start: int(cell.parts["authorised"])
        for cell in cells
        if cell.dimensions["country"] == "AR"
    }
    starts = period_range([PUBLISHED.date().replace(day=1)], ctx)
    return {start: found.get(start, 0) for start in starts}


def test_a_grant_that_ends_counts_in_the_months_it_holds_at_their_end_and_until_then_as_of_now() -> None:
    grant = _grant("ends", expires_at=datetime(2026, 2, 15, tzinfo=UTC))
    late_in_march = datetime(2026, 3, 20, tzinfo=UTC)
    assert _authorised([grant], late_in_march) == {
        date(2026, 1, 1): 1,
        date(2026, 2, 1): 0,
        date(2026, 3, 1): 0,
    }
    # While February runs, the grant is judged at the as-of instant, as the ledger's current terms are.
    assert _authorised([grant], datetime(2026, 2, 14, tzinfo=UTC))[date(2026, 2, 1)] == 1
    assert _authorised([grant], datetime(2026, 2, 15, tzinfo=UTC))[date(2026, 2, 1)] == 0


def test_a_grant_dated_to_start_later_counts_only_from_its_start() -> None:
    grant = _grant("later", starts_at=datetime(2026, 3, 1, tzinfo=UTC))
    found = _authorised([grant], datetime(2026, 4, 2, tzinfo=UTC))
    assert found == {date(2026, 1, 1): 0, date(2026, 2, 1): 0, date(2026, 3, 1): 1, date(2026, 4, 1): 1}
    assert _authorised([grant], datetime(2026, 2, 28, 23, tzinfo=UTC), "year") == {date(2026, 1, 1): 0}


def test_a_withdrawal_ends_a_grant_whatever_its_window() -> None:
    grant = _grant("withdrawn")
    withdrawal = _make(
        DirectoryAuthorisationWithdrawn,
        "withdrawal",
        occurred_at=datetime(2026, 2, 3, tzinfo=UTC),
        consent_id="withdrawn",
        org_key=org(1),
        recipients=["AR"],
        country="AR",
    )
    assert _authorised([grant, withdrawal], datetime(2026, 3, 1, tzinfo=UTC)) == {
        date(2026, 1, 1): 1,
        date(2026, 2, 1): 0,
        date(2026, 3, 1): 0,
    }


@pytest.mark.parametrize(
    ("ends", "expected"),
    [(None, None), (datetime(2026, 2, 1, tzinfo=UTC), 1_769_904_000_000_000)],
)
def test_the_window_rides_after_the_order_key_and_reads_back(
    ends: datetime | None, expected: int | None
) -> None:
    plain = order_key(PUBLISHED, 0, "0" * 36)
    windowed = with_window(plain, PUBLISHED, ends)
    assert windowed.startswith(plain + "|")
    assert window_of(windowed) == (1_768_046_400_000_000, expected)
    # A report stored before grants carried a window has none, and counts from its publication on.
    assert window_of(plain) is None
