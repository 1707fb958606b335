"""The `alcance` command line: run the pipeline, start the local stack, read indicators, recompute."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import traceback
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from alcance.cli_errors import (
    CliMistake,
    ExitCode,
    check_dimensions,
    check_source_kinds,
    local_stack_mistake,
    note_state_directory,
    resolve_indicator,
)
from infra.config_check import ConfigurationError, describe_validation_error
from infra.logs import setup_logging
from infra.roles import check_identity_keys
from infra.settings import ReachTargetConfig, Settings, load_settings

# The art. 7 audiences CVF-16 has targets for (infra.settings.ReachTargetConfig.audience).
AUDIENCES = ("TPO_AUTHORITY", "BUSINESS_CHAMBER", "SECTOR_ASSOCIATION", "MSME")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alcance",
        description="Reach and effect of ALADI training and trade-promotion programmes (Resolution 503).",
    )
    parser.add_argument("--config", type=Path, help="TOML file with settings and [[sources]] tables")
    parser.add_argument("--debug", action="store_true", help="show the traceback of any error")
    # Also accepted after the command (`alcance run --config FILE --debug`).
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    config.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
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
    run.add_argument("--no-web", action="store_true", help="do not serve the web app and query API")

    commands.add_parser(
        "serve", parents=[config], help="serve the web app and query API; prints a one-time login link"
    )
    token = commands.add_parser("token", parents=[config], help="bearer tokens of the web app and query API")
    token.add_argument("action", choices=("create", "revoke", "list"))
    token.add_argument("target", nargs="?", help="id or name of the token to revoke")
    token.add_argument("--role", choices=("coordinator", "developer", "external", "state", "plgn"))
    token.add_argument("--name", help="who the token is for (default: role and a short id)")
    token.add_argument("--state", type=str.upper, help="ALADI member state of a state-role token, e.g. AR")
    token.add_argument("--days", type=int, default=90, help="days the token stays valid (1-365, default 90)")

    commands.add_parser(
        "stack", parents=[config], help="start the local broker and PostgreSQL alone and print their settings"
    )
    broker = commands.add_parser("broker", parents=[config], help="the local Apache Kafka broker's jars")
    broker.add_argument(
        "action",
        choices=("fetch", "path"),
        help="fetch: download the pinned jars once with Maven; path: print where they are",
    )

    db = commands.add_parser("db", parents=[config], help="the store's roles, for a managed PostgreSQL")
    db.add_argument(
        "action",
        choices=("roles",),
        help="roles: print the SQL that creates the store's roles (run it once as an administrator)",
    )
    db.add_argument("--database", default="postgres", help="the database alcance's schema lives in")
    indicators = commands.add_parser("indicators", parents=[config], help="print current indicator values")
    indicators.add_argument("--json", action="store_true", help="print a JSON list (the only format yet)")
    indicators.add_argument("--indicator", help="catalogue id, e.g. CVF-01, any case (default: all)")
    indicators.add_argument("--period", choices=("month", "quarter", "year"), default="month")
    indicators.add_argument("--by", default="", help="comma-separated dimensions, e.g. country,audience")
    indicators.add_argument(
        "--external",
        action="store_true",
        help="apply small-cell suppression, as for audiences outside the monitoring team",
    )
    indicators.add_argument(
        "--fresh",
        action="store_true",
        help="compute the values of the present from the store, never from a snapshot (slower)",
    )

    commands.add_parser(
        "catalogue", parents=[config], help="print the indicator catalogue (ids, names in es/pt/en, formulas)"
    )
    commands.add_parser("recompute", parents=[config], help="rebuild every indicator from the stored facts")
    status = commands.add_parser(
        "status", parents=[config], help="sources' health, lag and last error; processors' committed offsets"
    )
    status.add_argument("--json", action="store_true", help="print a JSON object")

    targets = commands.add_parser(
        "targets", parents=[config], help="CVF-16 reach targets: list or set one (also [[reach_targets]])"
    )
    targets.add_argument("action", choices=("list", "set"))
    targets.add_argument("--audience", type=str.upper, choices=AUDIENCES, help="art. 7 audience (with set)")
    targets.add_argument("--year", type=int, help="year of the activity plan (with set)")
    targets.add_argument("--target", help="unique certified learners planned for the year (with set)")
    targets.add_argument("--source", default="Programa de Actividades", help="document the target comes from")

    directory = commands.add_parser("directory", parents=[config], help="the PLGN directory (art. 8)")
    directory.add_argument(
        "action",
        choices=("verify-log", "indicators"),
        help="verify-log: check the access log's hash chain; indicators: DIR-01 to DIR-03 and GOV-02 as JSON",
    )
    connectors = commands.add_parser("connectors", parents=[config], help="connector plugins")
    connectors.add_argument("action", choices=("list",))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `alcance` console script; returns the process exit code.

    Expected mistakes (configuration, unknown ids, a busy state directory) end with a short message on
    stderr and their own `ExitCode`; a traceback is printed only with `--debug`.
    """
    args = _parser().parse_args(argv)
    try:
        return _main(args)
    except CliMistake as exc:
        return _report(args, str(exc), exc.code)
    except (ConfigurationError, FileNotFoundError) as exc:
        # ConfigurationError messages never quote a configured value, so they are safe to print.
        return _report(args, str(exc), ExitCode.CONFIGURATION)
    except Exception as exc:
        # The last resort: one line, the traceback only on request.
        return _report(
            args, f"unexpected {type(exc).__name__} (run with --debug for the traceback)", ExitCode.UNEXPECTED
        )


def _report(args: argparse.Namespace, message: str, code: ExitCode) -> int:
    if getattr(args, "debug", False):
        traceback.print_exc()
    print(f"alcance: {message}", file=sys.stderr)
    return int(code)


def _main(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    check_identity_keys(settings.kafka, settings.postgres)
    if args.command == "indicators":
        # Checked before any store starts, so a typo costs no PostgreSQL start-up.
        if args.indicator is not None:
            args.indicator = resolve_indicator(args.indicator)
        args.by = [name.strip().lower() for name in args.by.split(",") if name.strip()]
        left_out = check_dimensions(args.indicator, args.by)
        if left_out:
            print(
                f"alcance: {len(left_out)} indicators lack dimension(s) {', '.join(args.by)}"
                f" and are left out: {', '.join(left_out)}",
                file=sys.stderr,
            )
    if args.command == "run":
        check_source_kinds(settings)
    if args.command == "targets":
        args.new = _new_target(args)
    if args.command == "token":
        _check_token_arguments(args)
    if args.command in {"run", "stack", "indicators", "recompute", "status", "targets", "serve", "token"}:
        note_state_directory(settings)
    setup_logging(settings.log)
    from infra.local import LocalStackError

    try:
        return asyncio.run(_dispatch(args, settings))
    except LocalStackError as exc:
        raise local_stack_mistake(settings, exc) from exc


def _check_token_arguments(args: argparse.Namespace) -> None:
    """What `alcance token` needs, checked before the store opens."""
    if args.action == "create" and args.role is None:
        raise CliMistake("token create needs --role coordinator|developer|external|state", ExitCode.USAGE)
    if args.action == "revoke" and not args.target:
        raise CliMistake("token revoke needs the id or name of a token (alcance token list)", ExitCode.USAGE)
    if args.action == "create" and (args.role == "state") != (args.state is not None):
        raise CliMistake(
            "--state (an ALADI member state, e.g. AR) goes with --role state only", ExitCode.USAGE
        )
    if not 1 <= args.days <= 365:
        raise CliMistake("--days must be between 1 and 365", ExitCode.USAGE)


def _new_target(args: argparse.Namespace) -> list[ReachTargetConfig]:
    """The target `alcance targets set` asks for (none for `list`), checked before the store opens."""
    if args.action == "list":
        return []
    missing = [f"--{name}" for name in ("audience", "year", "target") if getattr(args, name) is None]
    if missing:
        raise CliMistake(f"targets set needs {', '.join(missing)}", ExitCode.USAGE)
    try:
        return [
            ReachTargetConfig(audience=args.audience, year=args.year, target=args.target, source=args.source)
        ]
    except ValidationError as exc:
        raise CliMistake(describe_validation_error(exc, origin="the command line"), ExitCode.USAGE) from None


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    # Imports are local so that `alcance --help` and light commands start fast.
    from alcance import app

    if args.command == "run":
        if args.processes is not None:
            settings = settings.model_copy(
                update={"processor": settings.processor.model_copy(update={"processes": args.processes})}
            )
        if args.no_web:
            settings = settings.model_copy(update={"web": settings.web.model_copy(update={"enabled": False})})
        return await app.run_pipeline(settings, until_idle=args.until_idle)
    if args.command in {"serve", "token"}:
        return await _web_command(args, settings)
    if args.command == "stack":
        from infra.local import serve_stack

        await serve_stack(settings)
        return 0
    if args.command == "broker":
        return _broker(args.action, settings)
    if args.command == "db":
        from infra.store_grants import roles_script

        print(roles_script(args.database))
        return 0
    if args.command == "indicators":
        rows = await app.read_indicators(
            settings,
            indicator=args.indicator,
            period=args.period,
            by=args.by,
            external=args.external,
            fresh=args.fresh,
        )
        print(json.dumps(_json_ready(rows), ensure_ascii=False, indent=2, default=str))
        if rows.changes_pending:
            print(
                f"alcance: values as of {rows.as_of.isoformat()} (snapshots); changes received since may be"
                " missing: --fresh computes the present",
                file=sys.stderr,
            )
        return 0
    if args.command == "catalogue":
        print(json.dumps(app.catalogue_as_data(), ensure_ascii=False, indent=2))
        return 0
    if args.command == "recompute":
        await app.recompute(settings)
        return 0
    if args.command == "targets":
        stored = await app.targets(settings, args.new)
        for entry in stored:
            print(f"{entry.year}\t{entry.audience}\t{_json_ready(entry.target)}\t{entry.source}")
        return 0
    if args.command == "status":
        from infra.status import format_status

        found = await app.status(settings)
        if args.json:
            print(json.dumps(found, ensure_ascii=False, indent=2, default=str))
        else:
            print("\n".join(format_status(found)))
        return 0
    if args.command == "connectors":
        for kind, target in app.list_connectors():
            print(f"{kind}\t{target}")
        return 0
    if args.command == "directory":
        from directory.commands import directory_command

        ok, text = await directory_command(args.action, settings)
        print(text, file=sys.stdout if ok else sys.stderr)
        return 0 if ok else int(ExitCode.LOG_TAMPERED)
    raise AssertionError(f"unhandled command {args.command}")


async def _web_command(args: argparse.Namespace, settings: Settings) -> int:
    from alcance import web_commands
    from web.identities import IdentityError

    if args.command == "serve":
        return await web_commands.serve(settings)
    try:
        lines = await web_commands.token(
            settings,
            args.action,
            role=args.role,
            name=args.name,
            state=args.state,
            target=args.target,
            ttl_s=args.days * 86_400.0,
        )
    except IdentityError as exc:
        raise CliMistake(str(exc), ExitCode.USAGE) from None
    print("\n".join(lines))
    return 0


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
