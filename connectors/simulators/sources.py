"""The simulated sources of the local run: an xAPI LRS, a Moodle site, the PLGN feed and a cost ledger.

`alcance run` pulls from them when no `[[sources]]` are configured. The LRS, the PLGN feed and the cost
ledger describe one seeded world; the simulated Moodle is a second, independent site (its own seed),
so that every connector runs without a learner being counted twice through two channels.
"""

from __future__ import annotations

import csv
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from connectors.simulators.generator import World, generate
from connectors.simulators.moodle_ws import MoodleSimulator, state_from_world
from connectors.simulators.plgn_directory import (
    PlgnDirectorySimulator,
    PlgnDirectoryState,
    directory_from_world,
)
from connectors.simulators.plgn_feed import PlgnFeedSimulator, feed_from_world
from connectors.simulators.serving import serving
from connectors.simulators.xapi_lrs import StatementTruth, XapiLrs, statements_from_world
from infra.settings import Settings, SourceConfig

LEDGER_COLUMNS = (
    "cost_id", "activity_id", "activity_type", "category", "payer",
    "amount", "currency", "usd_amount", "recorded_at", "voids",
)  # fmt: skip


@dataclass(frozen=True)
class SimulatedSources:
    """The running simulators, the source entries that point at them, and their ground truth.

    Attributes:
        sources: one `SourceConfig` per simulator, ready for the connectors.
        world: the world behind the LRS, the PLGN feed and the cost ledger.
        moodle_world: the world of the independent simulated Moodle site.
        statement_truth: what a correct xAPI connector publishes for each LRS statement.
    """

    sources: list[SourceConfig]
    world: World
    moodle_world: World
    statement_truth: list[StatementTruth]
    plgn_feed_endpoint: str | None = None
    plgn_directory_endpoint: str | None = None
    plgn_token: SecretStr | None = None


def write_cost_ledger(world: World, path: Path) -> None:
    """Write the world's cost entries as the finance ledger CSV read by `connectors.costs`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    activity_kinds = {activity.activity_id: activity.kind for activity in world.activities}
    with path.open("w", newline="", encoding="utf-8") as ledger:
        writer = csv.DictWriter(ledger, fieldnames=LEDGER_COLUMNS)
        writer.writeheader()
        for cost in sorted(world.costs, key=lambda entry: entry.recorded_at):
            activity_id = cost.activity_id or cost.offering_id
            writer.writerow(
                {
                    "cost_id": cost.cost_id,
                    "activity_id": activity_id,
                    "activity_type": activity_kinds.get(cost.activity_id or "", "COURSE_OFFERING"),
                    "category": cost.category,
                    "payer": "ALADI",
                    "amount": format(cost.amount, "f"),
                    "currency": cost.currency,
                    "usd_amount": format(cost.usd_amount, "f"),
                    "recorded_at": cost.recorded_at.isoformat(),
                    "voids": "",
                }
            )


@asynccontextmanager
async def simulated_sources(settings: Settings) -> AsyncIterator[SimulatedSources]:
    """Serve the simulators on free local ports for the duration of the block.

    The world is generated from `settings.simulation_seed` and `settings.simulation_scale`, so two runs
    with the same settings pull the same records (and a restarted run finds what it already counted).
    """
    world = generate(settings.simulation_seed, scale=settings.simulation_scale)
    moodle_world = generate(settings.simulation_seed + 1, scale=settings.simulation_scale, courses=3)
    statements, truth = statements_from_world(world, seed=settings.simulation_seed)
    # Credentials of the simulators: random per run, passed to the connectors like real secrets.
    lrs_password = secrets.token_urlsafe(12)
    moodle_token = secrets.token_hex(16)
    plgn_token = secrets.token_urlsafe(16)
    lrs = XapiLrs(statements, username="alcance", password=lrs_password)
    ledger = settings.state_dir / "simulated" / "costs.csv"
    write_cost_ledger(world, ledger)

    async with AsyncExitStack() as stack:
        lrs_endpoint = await lrs.start()
        stack.push_async_callback(lrs.stop)
        moodle_app = MoodleSimulator(state_from_world(moodle_world, staff=True), moodle_token).app()
        moodle_url = await stack.enter_async_context(serving(moodle_app))
        plgn_app = PlgnFeedSimulator(feed_from_world(world), plgn_token).app()
        plgn_url = await stack.enter_async_context(serving(plgn_app))
        directory_state = PlgnDirectoryState(directory_from_world(world))
        directory_url = await stack.enter_async_context(
            serving(PlgnDirectorySimulator(directory_state, plgn_token).app())
        )
        sources = [
            SourceConfig(
                name="cvf-lrs",
                kind="xapi",
                endpoint=lrs_endpoint,
                username="alcance",
                password=SecretStr(lrs_password),
            ),
            SourceConfig(
                name="cvf-moodle", kind="moodle", endpoint=f"{moodle_url}/", token=SecretStr(moodle_token)
            ),
            SourceConfig(
                name="plgn", kind="plgn", endpoint=f"{plgn_url}/activities", token=SecretStr(plgn_token)
            ),
            SourceConfig(name="finance-ledger", kind="costs", endpoint=ledger.resolve().as_uri()),
        ]
        yield SimulatedSources(
            sources=sources, world=world, moodle_world=moodle_world, statement_truth=truth,
            plgn_feed_endpoint=f"{plgn_url}/activities",
            plgn_directory_endpoint=f"{directory_url}/directory/firms", plgn_token=SecretStr(plgn_token),
        )  # fmt: skip
