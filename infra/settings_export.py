"""Settings handed on in full, secrets in clear: to a trusted child process or reader, never to a log.

A child gets them over a pipe (`settings_as_json`), which other processes cannot read through
`/proc/<pid>/environ`; `settings_as_environment` is for what can only take an environment (systemd
units, the test harness).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from infra.settings import Settings


def _revealed(value: Any) -> Any:
    """`value` as plain JSON-ready data, secrets in clear (for a trusted child process only)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return {name: _revealed(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, list):
        return [_revealed(item) for item in value]
    if isinstance(value, dict):
        return {key: _revealed(item) for key, item in value.items()}
    if isinstance(value, Path | uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def settings_section(section: BaseModel) -> dict[str, Any]:
    """`section` as plain JSON-ready data, secrets in clear (for a trusted reader only)."""
    revealed: dict[str, Any] = _revealed(section)
    return revealed


def settings_as_json(settings: Settings) -> str:
    """`settings` as one JSON document, secrets included, to hand to a child process over a pipe.

    Unlike the environment, a pipe is not readable by other processes through `/proc/<pid>/environ`.
    """
    return json.dumps({name: _revealed(getattr(settings, name)) for name in Settings.model_fields})


def settings_from_json(document: str) -> Settings:
    """The settings a parent sent with `settings_as_json` (the environment is not consulted)."""
    return Settings.model_validate(json.loads(document))


def settings_as_environment(settings: Settings) -> dict[str, str]:
    """`settings` as `ALCANCE_*` environment variables, secrets included, for child processes.

    Each section becomes one JSON-valued variable (pydantic-settings parses JSON for nested models), so
    a child started with this environment sees exactly the parent's resolved settings.
    """
    environment: dict[str, str] = {}
    for name in Settings.model_fields:
        value = _revealed(getattr(settings, name))
        environment[f"ALCANCE_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return environment
