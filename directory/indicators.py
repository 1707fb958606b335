"""The directory's indicators (art. 8), named in es/pt/en and read from the ledger and the access log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from directory.schema import sql
from directory.store import as_writer


@dataclass(frozen=True)
class DirectoryIndicator:
    """One directory indicator: id, names, the view it is read from and its value column."""

    id: str
    name_es: str
    name_pt: str
    name_en: str
    view: str
    """One of the views of migration 0353 (a fixed name, never input)."""
    definition: str


DIRECTORY_INDICATORS = (
    DirectoryIndicator(
        "DIR-01", "Consultas al directorio por Estado miembro", "Consultas ao diretório por Estado-membro",
        "Directory reads per member state", "indicator_accesses",
        "Directory reads (and denials) per member state and month, from the access log.",
    ),
    DirectoryIndicator(
        "DIR-02", "Empresas consultadas", "Empresas consultadas", "Firms viewed", "indicator_firms_viewed",
        "Distinct firms a member state received in a month, from the access log.",
    ),
    DirectoryIndicator(
        "DIR-03", "Cobertura de autorizaciones", "Cobertura de autorizações", "Authorisation coverage",
        "indicator_coverage",
        "Firms with a current authorisation covering the member state, over the firms PLGN's directory "
        "lists.",
    ),
    DirectoryIndicator(
        "GOV-02", "Tiempo de propagación de revocaciones", "Tempo de propagação de revogações",
        "Withdrawal propagation time", "indicator_withdrawal_propagation",
        "Per member state and month: the withdrawal notices sent to the states that had received a firm's "
        "record, those acknowledged, and the median and longest hours from notice to acknowledgement.",
    ),
)  # fmt: skip


async def read_directory_indicators(connection: asyncpg.Connection, schema: str) -> list[dict[str, Any]]:
    """Every directory indicator with its rows (coverage with its ratio), names in es/pt/en."""
    found: list[dict[str, Any]] = []
    for indicator in DIRECTORY_INDICATORS:
        query = sql("SELECT * FROM {s}." + indicator.view, schema)  # noqa: S608 - a fixed view name
        async with connection.transaction():
            # As the writer, whose policies show every state's notices (GOV-02).
            await as_writer(connection)
            rows: list[dict[str, Any]] = [dict(row) for row in await connection.fetch(query)]
        if indicator.id == "DIR-03":
            for row in rows:
                row["value"] = row["authorised"] / row["listed"] if row["listed"] else None
        found.append(
            {
                "indicator": indicator.id,
                "name": {"es": indicator.name_es, "pt": indicator.name_pt, "en": indicator.name_en},
                "definition": indicator.definition,
                "rows": sorted(rows, key=lambda row: tuple(str(value) for value in row.values())),
            }
        )
    return found
