"""Read-time aggregation of the PLGN indicators that join or window stored parts; pure."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal

from processors.indicators.base import UNKNOWN
from processors.indicators.catalogue import (
    CATALOGUE,
    CONTACT_ANSWER_WINDOW_DAYS,
    PLGN_ACTIVE_WINDOW_DAYS,
    Indicator,
)
from processors.indicators.cumulative import cumulative_tables
from processors.indicators.grouping import (
    Aggregator,
    Cell,
    ReadContext,
    RowIndex,
    StoredRow,
    latest_per_member,
    period_range,
    project,
    quantile,
)
from processors.indicators.periods import decode_member, epoch_micros, period_end, window_of

_REGISTERED = ("PLGN-01", "registered")


def _periods(ctx: ReadContext, *row_sets: Iterable[StoredRow]) -> list[date]:
    return period_range((row.period_start for rows in row_sets for row in rows), ctx)


def _registered_by(index: RowIndex, until: date) -> set[str]:
    """Firms registered up to the end of `until`, whatever their dimensions."""
    rows = index.get(_REGISTERED, ())
    return {row.member for row in rows if row.member is not None and row.period_start <= until}


def _cell(start: date, ctx: ReadContext, key: tuple[str, ...], parts: dict[str, Decimal]) -> Cell:
    return Cell(start, dict(zip(ctx.by, key, strict=True)), parts)


def aggregate_registered(indicator: Indicator, index: RowIndex, ctx: ReadContext) -> list[Cell]:
    """PLGN-01: the stock of registered firms at each period end, and the new registrations in it."""
    rows = index.get(_REGISTERED, ())
    first: dict[str, date] = {}
    for row in rows:
        if row.member is not None and (row.member not in first or row.period_start < first[row.member]):
            first[row.member] = row.period_start
    new: dict[date, dict[tuple[str, ...], set[str]]] = defaultdict(lambda: defaultdict(set))
    for row in rows:
        if row.member is not None and row.period_start == first[row.member]:
            new[row.period_start][project(row.dimensions, ctx.by, indicator.dimensions)].add(row.member)
    periods = _periods(ctx, rows)
    cells = []
    for start, stocks in zip(periods, _stocks(index, ctx, periods), strict=True):
        found = new.get(start, {})
        for key, stock in sorted(stocks.items()):
            cells.append(_cell(start, ctx, key, {"stock": stock, "new": Decimal(len(found.get(key, ())))}))
    return cells


def aggregate_active(indicator: Indicator, index: RowIndex, ctx: ReadContext) -> list[Cell]:
    """PLGN-02: firms acting in the 90 days up to each period end, over the stock at that end.

    A firm's country is its registration country when known (so the parties to meetings and answers
    count in their own country), else the country on the action.
    """
    country = {row.member: row.dimensions.get("country", UNKNOWN) for row in index.get(_REGISTERED, ())}
    actions: list[tuple[str, date, str]] = []
    for row in index.get(("PLGN-02", "active_day"), ()):
        if row.member is not None:
            org, day_text = decode_member(row.member)
            acted_on = date.fromisoformat(day_text)
            actions.append((org, acted_on, country.get(org) or row.dimensions["country"]))
    periods = _periods(ctx, index.get(_REGISTERED, ()), index.get(("PLGN-02", "active_day"), ()))
    stocks = _stocks(index, ctx, periods)
    # The windows move forward with the periods: each action enters once and leaves once.
    actions.sort(key=lambda action: action[1])
    inside: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
    keys: dict[str, tuple[str, ...]] = {}

    def key_of(org_country: str) -> tuple[str, ...]:
        found = keys.get(org_country)
        if found is None:
            found = keys[org_country] = project({"country": org_country}, ctx.by, indicator.dimensions)
        return found

    entered = left = 0
    cells = []
    for start, stock in zip(periods, stocks, strict=True):
        end = period_end(start, ctx.period).date()
        first_day = end - timedelta(days=PLGN_ACTIVE_WINDOW_DAYS)
        while entered < len(actions) and actions[entered][1] < end:
            org, _, org_country = actions[entered]
            inside[key_of(org_country)][org] += 1
            entered += 1
        while left < entered and actions[left][1] < first_day:
            org, _, org_country = actions[left]
            orgs = inside[key_of(org_country)]
            orgs[org] -= 1
            if not orgs[org]:
                del orgs[org]
            left += 1
        active = {key: len(orgs) for key, orgs in inside.items() if orgs}
        for key in sorted(set(stock) | set(active)):
            parts = {"active": Decimal(active.get(key, 0)), "stock": stock.get(key, Decimal(0))}
            cells.append(_cell(start, ctx, key, parts))
    return cells


def _stocks(index: RowIndex, ctx: ReadContext, periods: list[date]) -> list[dict[tuple[str, ...], Decimal]]:
    """Registered firms up to the end of each of `periods` (ascending), from one pass over them.

    By the `by` dimensions PLGN-01 has (the others wildcard).
    """
    tables = cumulative_tables(
        index.get(_REGISTERED, ()), "distinct", ctx.by, CATALOGUE["PLGN-01"].dimensions, periods
    )
    return [values.get(until, {}) for (values, _, _), until in zip(tables, periods, strict=True)]


def aggregate_contacts(indicator: Indicator, index: RowIndex, ctx: ReadContext) -> list[Cell]:
    """PLGN-06: requests of the period answered within 7 days, and the median answer time in hours."""
    answers = latest_per_member(index.get(("PLGN-06", "responded"), ()))
    groups: dict[tuple[date, tuple[str, ...]], list[Decimal | None]] = defaultdict(list)
    seen: set[str] = set()
    for row in sorted(
        index.get(("PLGN-06", "requested"), ()), key=lambda row: (row.member or "", row.period_start)
    ):
        if row.member is None:
            continue
        request_id, requested = decode_member(row.member)
        if request_id in seen:
            continue
        seen.add(request_id)
        answer = answers.get(request_id)
        hours = None if answer is None else (answer.value - Decimal(requested)) / Decimal(3600)
        groups[(row.period_start, project(row.dimensions, ctx.by, indicator.dimensions))].append(hours)
    cells = []
    for (start, key), hours_list in sorted(groups.items(), key=lambda item: item[0]):
        answered = [hours for hours in hours_list if hours is not None]
        parts = {
            "requests": Decimal(len(hours_list)),
            "answered_7d": Decimal(sum(1 for hours in answered if hours <= CONTACT_ANSWER_WINDOW_DAYS * 24)),
            "answered": Decimal(len(answered)),
        }
        if answered:
            parts["median_response_hours"] = quantile(answered, Decimal("0.5"))
        cells.append(_cell(start, ctx, key, parts))
    return cells


def aggregate_directory(indicator: Indicator, index: RowIndex, ctx: ReadContext) -> list[Cell]:
    """PLGN-16: firms with an authorisation in force for member state C at each period end, over all firms.

    A consent's latest grant or withdrawal published by the period decides; a grant counts only inside
    its validity window, judged at the period's end or, for the period still running, at the as-of instant
    (so the running period agrees with the consent ledger's current authorisations).
    """
    rows = index.get(("PLGN-16", "authorised"), ())
    withdrawals = index.get(("PLGN-16", "withdrawals"), ())
    as_of = epoch_micros(ctx.as_of)
    cells = []
    for start in _periods(ctx, rows, withdrawals, index.get(_REGISTERED, ())):
        # The period's last instant, or the as-of instant while the period runs.
        judged_at = min(epoch_micros(period_end(start, ctx.period)) - 1, as_of)
        firms: dict[tuple[str, ...], set[str]] = defaultdict(set)
        for member, row in latest_per_member(rows, start).items():
            if row.value > 0 and _in_force(row.order_key, judged_at):
                firms[project(row.dimensions, ctx.by, indicator.dimensions)].add(decode_member(member)[0])
        withdrawn: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
        for row in withdrawals:
            if row.period_start == start:
                withdrawn[project(row.dimensions, ctx.by, indicator.dimensions)] += row.value
        # Every registered firm, whatever its country, may authorise any member state: the denominator
        # of each member state's rate is the whole stock.
        stock = Decimal(len(_registered_by(index, start)))
        full_keys = set(firms) | set(withdrawn)
        if not ctx.by:
            full_keys.add(())
        for key in sorted(full_keys):
            parts = {
                "authorised": Decimal(len(firms.get(key, ()))),
                "withdrawals": withdrawn.get(key, Decimal(0)),
                "stock": stock,
            }
            cells.append(_cell(start, ctx, key, parts))
    return cells


def _in_force(order: str, at: int) -> bool:
    # In force at the instant `at`, as the ledger judges it: started by then and not yet ended. A report
    # stored before grants carried their window counts from its publication on, as it always did.
    window = window_of(order)
    if window is None:
        return True
    starts, ends = window
    return starts <= at and (ends is None or at < ends)


AGGREGATIONS: dict[str, Aggregator] = {
    "registered_firms": aggregate_registered,
    "active_firms": aggregate_active,
    "contacts": aggregate_contacts,
    "directory": aggregate_directory,
}
