"""Calendar periods (UTC month, quarter, year) and the encoding of composite part members."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

from processors.indicators.base import PeriodKind

_SEPARATOR = "|"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# An order key (time, rank, event id) and the two ends of a validity window.
_WINDOWED_FIELDS = 5
_TWO_DIGITS = tuple(f"{number:02d}" for number in range(100))
_Moment = TypeVar("_Moment", date, datetime)


def period_start(moment: datetime, kind: PeriodKind) -> date:
    """First day of the UTC month, quarter or year containing `moment`."""
    utc = moment.astimezone(UTC)
    if kind == "month":
        return date(utc.year, utc.month, 1)
    if kind == "quarter":
        return date(utc.year, 3 * ((utc.month - 1) // 3) + 1, 1)
    return date(utc.year, 1, 1)


LAST_INSTANT = datetime.max.replace(tzinfo=UTC)
"""Where date arithmetic saturates: a period of year 9999 ends here rather than failing a read."""


def period_end(start: date, kind: PeriodKind) -> datetime:
    """The instant the period beginning on `start` ends (exclusive), in UTC (`LAST_INSTANT` in 9999)."""
    months = {"month": 1, "quarter": 3, "year": 12}[kind]
    month_index = start.month - 1 + months
    year = start.year + month_index // 12
    if year > 9999:
        return LAST_INSTANT
    return datetime(year, month_index % 12 + 1, 1, tzinfo=UTC)


def saturating_add(moment: _Moment, delta: timedelta) -> _Moment:
    """`moment + delta`, or the last representable date or instant when that is past year 9999."""
    try:
        return moment + delta
    except OverflowError:
        if isinstance(moment, datetime):
            return LAST_INSTANT if delta > timedelta(0) else datetime.min.replace(tzinfo=UTC)
        return date.max if delta > timedelta(0) else date.min


def epoch_seconds(moment: datetime) -> int:
    """Whole seconds since 1970-01-01T00:00:00Z; stored as the amount of time-valued "latest" parts."""
    if moment.tzinfo is UTC:  # decoded events are already UTC, and UTC minus UTC skips the offsets
        since = moment - _EPOCH
        seconds = since.days * 86_400 + since.seconds
        # timestamp() is the float seconds + microseconds / 10**6, which int() truncates to `seconds`
        # when there are no microseconds, or when 0 <= seconds < 2**33 (year 2242): there the float's
        # rounding error (at most 2**-20) is smaller than 10**-6, so it cannot reach a whole second.
        if not since.microseconds or 0 <= seconds < 2**33:
            return seconds
    return int(moment.astimezone(UTC).timestamp())


def from_epoch(seconds: int) -> datetime:
    """Inverse of `epoch_seconds`; saturates at `LAST_INSTANT` (a window after a year-9999 event)."""
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return LAST_INSTANT if seconds > 0 else datetime.min.replace(tzinfo=UTC)


def order_key(moment: datetime, rank: int = 0, tiebreak: str = "") -> str:
    """A string that sorts like (`moment`, `rank`, `tiebreak`): the order of "latest" reports."""
    # The text is strftime's "%Y-%m-%dT%H:%M:%S.%f" with the rank in two digits; strftime and the format
    # spec cost several times more than assembling it from the fields. strftime does not pad years
    # below 1000 the same way on every platform, so those (and instants in other zones) still use it.
    if moment.tzinfo is UTC and moment.year >= 1000 and 0 <= rank < 100:
        two, micros = _TWO_DIGITS, moment.microsecond
        return (
            f"{moment.year}-{two[moment.month]}-{two[moment.day]}"
            f"T{two[moment.hour]}:{two[moment.minute]}:{two[moment.second]}"
            f".{str(1_000_000 + micros)[1:] if micros else '000000'}|{two[rank]}|{tiebreak}"
        )
    return f"{moment.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%f')}|{rank:02d}|{tiebreak}"


_COMPLEMENT = str.maketrans("0123456789", "9876543210")
_MAX_SEQUENCE = 10**9 - 1


def _time_and_sequence(moment: datetime, sequence: int) -> str:
    """`moment` and `sequence` (an attempt number; from 10**9 on, all equal) at a fixed width."""
    timed = order_key(moment).split("|", 1)[0]
    return f"{timed}|{min(max(sequence, 0), _MAX_SEQUENCE):09d}"


def last_wins_key(moment: datetime, sequence: int, tiebreak: str = "") -> str:
    """An order key under which the latest report wins: the later time, then the higher `sequence`."""
    return f"{_time_and_sequence(moment, sequence)}|{tiebreak}"


def first_wins_key(moment: datetime, sequence: int, tiebreak: str = "") -> str:
    """An order key under which the earliest report wins, where "latest" parts keep the highest key.

    Every digit of the fixed-width time and `sequence` is complemented (d -> 9 - d), which reverses
    their string order: an earlier time, then a lower sequence, gives a higher key (for instants from
    year 1000, as `order_key`). `tiebreak` orders what remains, highest first.
    """
    return f"{_time_and_sequence(moment, sequence).translate(_COMPLEMENT)}|{tiebreak}"


def epoch_micros(moment: datetime) -> int:
    """Whole microseconds since 1970-01-01T00:00:00Z (exact, unlike a float timestamp)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def with_window(order: str, starts: datetime, ends: datetime | None) -> str:
    """`order` followed by a validity window: in force from `starts` until `ends` (never ends when None).

    The window rides after the order key's tiebreak. Keys that carry one end with a fixed-length event
    id, so the suffix never changes which of two reports wins; `window_of` reads it back.
    """
    return (
        f"{order}{_SEPARATOR}{epoch_micros(starts)}{_SEPARATOR}{'' if ends is None else epoch_micros(ends)}"
    )


def window_of(order: str) -> tuple[int, int | None] | None:
    """The (starts, ends) epoch microseconds `with_window` put on `order`; None on a key without one."""
    fields = order.split(_SEPARATOR)
    if len(fields) != _WINDOWED_FIELDS:
        return None
    starts, ends = fields[-2:]
    return int(starts), int(ends) if ends else None


def day_key(moment: datetime) -> str:
    """The UTC calendar day of `moment` as YYYY-MM-DD."""
    if moment.tzinfo is UTC:  # decoded events are already UTC
        return moment.date().isoformat()
    return moment.astimezone(UTC).date().isoformat()


def encode_member(*fields: str) -> str:
    """Join fields into one member string; fields may contain any character."""
    try:
        joined = _SEPARATOR.join(fields)
    except TypeError:
        pass  # not all strings: the escaping below raises what it always raised
    else:
        # Most fields hold neither "%" nor the separator, and then escaping changes nothing.
        if "%" not in joined and joined.count(_SEPARATOR) == len(fields) - 1:
            return joined
    return _SEPARATOR.join(field.replace("%", "%25").replace(_SEPARATOR, "%7C") for field in fields)


def decode_member(member: str) -> list[str]:
    """Split a member made by `encode_member` back into its fields."""
    if "%" not in member:
        return member.split(_SEPARATOR)
    return [field.replace("%7C", _SEPARATOR).replace("%25", "%") for field in member.split(_SEPARATOR)]


def days_between(start_s: int, end_s: int) -> float:
    """Days from one epoch-second instant to another (used only for window comparisons)."""
    return (end_s - start_s) / 86_400


def window_start(end: datetime, days: int) -> datetime:
    """The start of the `days`-long window ending at `end`."""
    return saturating_add(end, -timedelta(days=days))
