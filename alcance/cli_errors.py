"""The command line's one error style: expected mistakes end with a short message and their own exit code."""

from __future__ import annotations

import fcntl
import sys
from collections.abc import Sequence
from enum import IntEnum
from pathlib import Path

from infra.config_check import describe_validation_error, did_you_mean
from infra.processes import STATE_DIR_LOCK
from infra.settings import Settings

# Where the local PostgreSQL keeps its data inside the state directory (infra.local.LocalStack.pgdata),
# and the lock a running local stack holds on it (infra.local: lock_path).
LOCAL_STORE_DIR = "postgres"


class ExitCode(IntEnum):
    """Exit codes of `alcance`, one per kind of outcome, so scripts can tell them apart."""

    OK = 0
    # A run ended, but a source failed or a processor stopped on an error.
    RUN_FAILED = 1
    # argparse's own code for an unknown option or a missing argument.
    USAGE = 2
    CONFIGURATION = 3
    UNKNOWN_CHOICE = 4
    STATE_DIR_BUSY = 5
    # The local broker or PostgreSQL did not start (their logs are in the state directory).
    LOCAL_STACK_FAILED = 6
    # The directory's access log fails its hash-chain check (`alcance directory verify-log`).
    LOG_TAMPERED = 7
    # An error nobody expected: a bug, reported with `--debug` as a traceback.
    UNEXPECTED = 70


class CliMistake(Exception):
    """Raised for a mistake the user can fix; `main` prints the message alone and exits with `code`."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code


def resolve_indicator(text: str) -> str:
    """The catalogue id `text` names, compared case-insensitively.

    Raises:
        CliMistake: when no indicator has that id; the message lists the ids.
    """
    from processors.indicators.catalogue import CATALOGUE

    by_upper = {indicator_id.upper(): indicator_id for indicator_id in CATALOGUE}
    found = by_upper.get(text.strip().upper())
    if found is None:
        raise CliMistake(
            f"unknown indicator {text!r}{did_you_mean(text.strip().upper(), CATALOGUE)}; "
            f"valid: {', '.join(CATALOGUE)}",
            ExitCode.UNKNOWN_CHOICE,
        )
    return found


def check_dimensions(indicator: str | None, by: Sequence[str]) -> list[str]:
    """Indicator ids `--by` leaves out (only without `--indicator`): those lacking one of the dimensions.

    Raises:
        CliMistake: when `indicator` lacks one of `by`, or no indicator has it; the message lists the
            valid dimensions.
    """
    from processors.indicators.catalogue import CATALOGUE, INDICATORS

    if indicator is not None:
        dimensions = CATALOGUE[indicator].dimensions
        for name in by:
            if name not in dimensions:
                valid = f"its dimensions: {', '.join(dimensions)}" if dimensions else "it has no dimensions"
                raise CliMistake(f"{indicator} has no dimension {name!r}; {valid}", ExitCode.UNKNOWN_CHOICE)
        return []
    every = sorted({name for entry in INDICATORS for name in entry.dimensions})
    for name in by:
        if name not in every:
            raise CliMistake(
                f"no indicator has the dimension {name!r}{did_you_mean(name, every)}; "
                f"dimensions: {', '.join(every)}",
                ExitCode.UNKNOWN_CHOICE,
            )
    return [entry.id for entry in INDICATORS if not set(by) <= set(entry.dimensions)]


def check_source_kinds(settings: Settings) -> None:
    """Every configured source names an installed connector kind, with options that kind accepts.

    Raises:
        CliMistake: naming the source, its kind, the closest kind and the installed kinds; or the
            option that is unknown or invalid.
    """
    from pydantic import ValidationError

    from connectors.registry import available_kinds, load_connector_class

    kinds = available_kinds()
    for source in settings.sources:
        if source.kind not in kinds:
            raise CliMistake(
                f"source {source.name!r}: unknown connector kind {source.kind!r}"
                f"{did_you_mean(source.kind, kinds)}; installed kinds: {', '.join(kinds)}",
                ExitCode.CONFIGURATION,
            )
        options_model = getattr(load_connector_class(source.kind), "options_model", None)
        if options_model is None:
            continue
        try:
            options_model.model_validate(source.options)
        except ValidationError as exc:
            where = f"[sources.options] of source {source.name!r}"
            raise CliMistake(describe_validation_error(exc, origin=where), ExitCode.CONFIGURATION) from None


def note_state_directory(settings: Settings) -> None:
    """Say on stderr which state directory is used when it holds nothing yet.

    A command run from another directory would otherwise open a new, empty store without a word.
    """
    if settings.postgres.dsn is not None:
        return
    state_dir = Path(settings.state_dir).absolute()
    if not state_dir.exists():
        print(f"alcance: state directory {state_dir} does not exist: a new store is created", file=sys.stderr)
    elif not (state_dir / LOCAL_STORE_DIR).exists():
        print(f"alcance: state directory {state_dir} holds no store yet: one is created", file=sys.stderr)


def state_directory_busy(settings: Settings) -> bool:
    """Whether another process (`alcance stack`, `alcance run`) holds the state directory's store lock."""
    lock_path = Path(settings.state_dir) / STATE_DIR_LOCK
    if not lock_path.exists():
        return False
    with lock_path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def local_stack_mistake(settings: Settings, error: Exception) -> CliMistake:
    """The message for a local stack that could not start: held by another process, or failed."""
    first_line = str(error).splitlines()[0]
    if state_directory_busy(settings):
        hint = "set ALCANCE_POSTGRES__DSN to the store `alcance stack` printed, or use another state_dir"
        return CliMistake(f"{first_line}\n{hint}", ExitCode.STATE_DIR_BUSY)
    where = Path(settings.state_dir).absolute()
    return CliMistake(f"{first_line} (logs in {where}; --debug for more)", ExitCode.LOCAL_STACK_FAILED)
