"""Filters kept in the query string: read them (400 on a value that is not offered) and offer them."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from web.pages.i18n import Speaker
from web.pages.tables import Filter, Option
from web.problems import ProblemError


def chosen(request: web.Request, name: str, valid: Sequence[str], default: str = "") -> str:
    """The value of filter `name`, one of `valid` ("" for all); a 400 naming the valid ones otherwise."""
    value = request.query.get(name, default)
    if value and value not in valid:
        listed = ", ".join(valid) or "none"
        raise ProblemError(400, "Bad Request", f"{name}: {value!r} is not offered here; valid: {listed}")
    return value


def chosen_year(request: web.Request, years: Sequence[int]) -> int | None:
    """The `year` filter among the years holding data; the latest by default."""
    text = chosen(request, "year", [str(year) for year in years], str(years[0]) if years else "")
    return int(text) if text else None


def year_filter(say: Speaker, years: Sequence[int], year: int | None) -> Filter:
    """The year selector."""
    return Filter("year", say("year"), [Option(str(y), str(y)) for y in years], str(year or ""))


def dimension_filter(
    say: Speaker, name: str, values: Sequence[str], selected: str, *, label: str = ""
) -> Filter:
    """A selector of one dimension's values, with "all" first."""
    options = [Option("", say("all"))] + [Option(value, say.value_of(name, value)) for value in values]
    return Filter(name, label or say.dimension(name), options, selected)


def by_filter(say: Speaker, dimensions: Sequence[str], selected: str) -> Filter:
    """The "group by" selector: total, or one dimension."""
    options = [Option("", say("total"))] + [Option(name, say.dimension(name)) for name in dimensions]
    return Filter("by", say("group_by"), options, selected)
