"""`/api/v1/catalogue`: the indicator definitions, with their names in es/pt/en."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from processors.indicators import catalogue
from web.api.base import PREFIX, Endpoint
from web.api.models import Catalogue, CatalogueEntry, IndicatorNames
from web.problems import ProblemError


def entry_of(indicator: catalogue.Indicator) -> CatalogueEntry:
    """The API form of a catalogue entry."""
    return CatalogueEntry(
        id=indicator.id,
        family=indicator.family,
        article=indicator.article,
        names=IndicatorNames(**indicator.names),
        definition=indicator.definition,
        formula=indicator.formula,
        unit=indicator.unit,
        dimensions=list(indicator.dimensions),
        cumulative=indicator.cumulative,
    )


def resolve(indicator_id: str) -> catalogue.Indicator:
    """The catalogue entry of an id in any case; 404 naming where the valid ids are."""
    try:
        return catalogue.get(indicator_id.upper())
    except KeyError:
        raise ProblemError(
            404, "Not Found", f"no indicator {indicator_id!r}; the valid ids are listed at {PREFIX}/catalogue"
        ) from None


async def list_catalogue(_request: web.Request, _query: Any) -> Catalogue:
    """Every indicator of the catalogue."""
    return Catalogue(indicators=[entry_of(entry) for entry in catalogue.INDICATORS])


async def catalogue_entry(request: web.Request, _query: Any) -> CatalogueEntry:
    """One indicator's definition."""
    return entry_of(resolve(request.match_info["indicator_id"]))


ENDPOINTS = [
    Endpoint(
        f"{PREFIX}/catalogue", "The indicator catalogue", "catalogue", list_catalogue, response=Catalogue
    ),
    Endpoint(
        f"{PREFIX}/catalogue/{{indicator_id}}",
        "One indicator's definition",
        "catalogue",
        catalogue_entry,
        response=CatalogueEntry,
        path_params={"indicator_id": "catalogue id, any case, e.g. CVF-01"},
    ),
]
