"""The `alcance` command line: run the pipeline, start the local stack, read indicators, recompute."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from infra.logs import setup_logging
from infra.settings import Settings, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alcance",
        description="Reach and effect of ALADI training and trade-promotion programmes (Resolution 503).",
    )
    parser.add_argument("--config", type=Path, help="TOML file with settings and [[sources]] tables")
    # Also accepted after the command (`alcance run --config FILE`).
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run", parents=[config], help="run connectors and processors (local stack unless configured)"
    )
    run.add_argument(
        "--until-idle",
        action="store_true",
        help="stop once every source is exhausted and everything published has been processed",
    )
    run.add_argument("--processes", type=int, help="processor processes (default: settings)")

    commands.add_parser(
        "stack", parents=[config], help="start the local broker and PostgreSQL alone and print their settings"
    )
    broker = commands.add_parser("broker", parents=[config], help="the local Apache Kafka broker's jars")
    broker.add_argument(
        "action",
        choices=("fetch", "path"),
        help="fetch: download the pinned jars once with Maven; path: print where they are",
    )

    indicators = commands.add_parser("indicators", parents=[config], help="print current indicator values")
    indicators.add_argument("--json", action="store_true", help="print a JSON list (the only format yet)")
    indicators.add_argument("--indicator", help="catalogue id, e.g. CVF-01 (default: all)")
    indicators.add_argument("--period", choices=("month", "quarter", "year"), default="month")
    indicators.add_argument("--by", default="", help="comma-separated dimensions, e.g. country,audience")
    indicators.add_argument(
        "--external",
        action="store_true",
        help="apply small-cell suppression, as for audiences outside the monitoring team",
    )

    commands.add_parser(
        "catalogue", parents=[config], help="print the indicator catalogue (ids, names in es/pt/en, formulas)"
    )
    commands.add_parser("recompute", parents=[config], help="rebuild every indicator from the stored facts")

    connectors = commands.add_parser("connectors", parents=[config], help="connector plugins")
    connectors.add_argument("action", choices=("list",))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `alcance` console script; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except (FileNotFoundError, ValidationError) as exc:
        # pydantic never echoes SecretStr values, so the message is safe to print.
        print(f"alcance: invalid configuration: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log)
    from infra.processes import LocalStackError

    try:
        return asyncio.run(_dispatch(args, settings))
    except LocalStackError as exc:
        # A local service that cannot start says why and what to install: no traceback needed.
        print(f"alcance: {exc}", file=sys.stderr)
        return 1


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    # Imports are local so that `alcance --help` and light commands start fast.
    from infra import app

    if args.command == "run":
        if args.processes is not None:
            settings = settings.model_copy(
                update={"processor": settings.processor.model_copy(update={"processes": args.processes})}
            )
        return await app.run_pipeline(settings, until_idle=args.until_idle)
    if args.command == "stack":
        from infra.local import serve_stack

        await serve_stack(settings)
        return 0
    if args.command == "broker":
        return _broker(args.action, settings)
    if args.command == "indicators":
        by = [dimension.strip() for dimension in args.by.split(",") if dimension.strip()]
        rows = await app.read_indicators(
            settings, indicator=args.indicator, period=args.period, by=by, external=args.external
        )
        print(json.dumps(_json_ready(rows), ensure_ascii=False, indent=2, default=str))
        return 0
    if args.command == "catalogue":
        print(json.dumps(app.catalogue_as_data(), ensure_ascii=False, indent=2))
        return 0
    if args.command == "recompute":
        await app.recompute(settings)
        return 0
    if args.command == "connectors":
        for kind, target in app.list_connectors():
            print(f"{kind}\t{target}")
        return 0
    raise AssertionError(f"unhandled command {args.command}")


def _broker(action: str, settings: Settings) -> int:
    from infra.broker.jars import fetch_jars, jars_dir, jars_present

    if action == "path":
        print(jars_dir(settings.cache_dir))
        return 0 if jars_present(settings.cache_dir) else 1
    print(fetch_jars(settings.cache_dir))
    return 0


def _json_ready(value: Any) -> Any:
    """Decimals as JSON numbers (integers when whole), so dashboards and `jq` read values as numbers."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
