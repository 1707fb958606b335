"""A connector process for crash tests: runs the configured sources until idle, then prints a summary.

Run as `python -m tests.connectors.pull_worker [--follow]` with the settings in `ALCANCE_*` variables;
`--follow` keeps polling after catching up (until SIGTERM).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys

from connectors.context import ConnectorContext
from connectors.registry import load_connector_class
from connectors.runtime import run_until_signalled
from infra.settings import load_settings


async def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s %(levelname)s %(message)s")
    settings = load_settings()
    connectors = [load_connector_class(s.kind)(s, settings) for s in settings.sources]
    async with ConnectorContext.open(settings) as context:
        print("WORKER STARTED", flush=True)
        await run_until_signalled(context, connectors, until_idle="--follow" not in sys.argv)
    summary = {
        c.name: {
            "health": str(c.health()),
            "exhausted": c.exhausted.is_set(),
            "records": c.stats.records_pulled,
            "events": c.stats.events_published,
            "dead": c.stats.dead_lettered,
            "retries": c.stats.retries,
        }
        for c in connectors
    }
    print("WORKER DONE " + json.dumps(summary), flush=True)
    return 0 if "--follow" in sys.argv or all(c.exhausted.is_set() for c in connectors) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
