"""Strict configuration: unknown keys and variables are errors, and no error ever shows a value.

pydantic-settings ignores what it does not know (a misspelt `ALCANCE_KAFKA__BOOTSTRAP_SERVER` silently
starts a local broker instead of using the cluster), and its validation messages quote the input, which
for a `[[sources]]` table includes the password. These checks run before the settings are built and
report each mistake with where it is and the closest valid name.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

ENV_PREFIX = "ALCANCE_"
ENV_NESTING = "__"


class ConfigurationError(ValueError):
    """Raised when the configuration file or the environment holds a mistake; the message names it.

    The message never carries a configured value, so it is safe to print and to log.
    """


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """` (did you mean X?)` for the closest of `valid`, or an empty string when none is close."""
    close = difflib.get_close_matches(name, sorted(valid), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _suggest_or_list(name: str, valid: Iterable[str]) -> str:
    return did_you_mean(name, valid) or f" (valid: {', '.join(sorted(valid))})"


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (also inside `list[...]` or `X | None`), or None for a plain value."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _section_model(argument)
        if found is not None:
            return found
    return None


def _is_list(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is list


def unknown_toml_keys(data: Mapping[str, Any], model: type[BaseModel], place: str = "") -> list[str]:
    """One message per key of `data` that `model` (and the models of its sections) does not have."""
    problems: list[str] = []
    fields = model.model_fields
    for key, value in data.items():
        where = f"[{place}]" if place else "the top level"
        if key not in fields:
            problems.append(f"unknown key {key!r} in {where}{_suggest_or_list(key, fields)}")
            continue
        annotation = fields[key].annotation
        section = _section_model(annotation)
        if section is None:
            continue
        inner = f"{place}.{key}" if place else key
        if _is_list(annotation) and isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    problems.extend(unknown_toml_keys(item, section, f"{inner}[{index}]"))
        elif isinstance(value, Mapping):
            problems.extend(unknown_toml_keys(value, section, inner))
    return problems


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML file's data.

    Raises:
        ConfigurationError: when the file is not valid TOML (the message gives line and column).
    """
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except tomllib.TOMLDecodeError as exc:
        # The decoder's message names the line and column, never the text found there.
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from None


def unknown_environment_variables(environ: Mapping[str, str], model: type[BaseModel]) -> list[str]:
    """One message per `ALCANCE_*` variable that names no setting.

    Valid are `ALCANCE_<FIELD>` for every field (a section as one JSON value) and
    `ALCANCE_<SECTION>__<FIELD>` for every field of a section; names are case-insensitive.
    """
    problems: list[str] = []
    fields = model.model_fields
    valid_names = {name.upper() for name in fields}
    for section_name, field in fields.items():
        section = _section_model(field.annotation)
        if section is not None and not _is_list(field.annotation):
            valid_names |= {f"{section_name}{ENV_NESTING}{inner}".upper() for inner in section.model_fields}
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith(ENV_PREFIX):
            continue
        name = upper.removeprefix(ENV_PREFIX)
        if name not in valid_names:
            close = difflib.get_close_matches(name, sorted(valid_names), n=1, cutoff=0.6)
            suggestion = (
                f" (did you mean {ENV_PREFIX}{close[0]}?)" if close else " (.env.example lists every setting)"
            )
            problems.append(f"unknown environment variable {variable}{suggestion}")
    return problems


def describe_validation_error(exc: ValidationError, *, origin: str) -> str:
    """A one-line-per-mistake description of `exc` that quotes no input value.

    pydantic's own text quotes the input (for a source table, its password or token); here each
    mistake is its location and pydantic's message, which states the rule, not the value.
    """
    lines = []
    for error in exc.errors(include_input=False, include_url=False, include_context=False):
        location = ".".join(str(part) for part in error["loc"]) or "settings"
        lines.append(f"{location}: {error['msg']}")
    return f"invalid configuration ({origin}): " + "; ".join(lines)


__all__ = [
    "ConfigurationError",
    "describe_validation_error",
    "did_you_mean",
    "read_toml",
    "unknown_environment_variables",
    "unknown_toml_keys",
]
