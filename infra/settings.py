"""The one settings tree of alcance: environment (`ALCANCE_`, nested with `__`) plus an optional TOML file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class KafkaSettings(BaseModel):
    """Where the Kafka-protocol cluster is and how to talk to it.

    With no `bootstrap_servers` the embedded local broker is started and used.
    """

    bootstrap_servers: str | None = None
    topic_prefix: str = "alcance."
    client_id: str = "alcance"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    # The local broker cannot give aiokafka an idempotent producer; a real cluster can.
    enable_idempotence: bool = False
    partitions: int = Field(default=4, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    request_timeout_ms: int = 30_000
    # The local broker makes every JoinGroup wait session_timeout_ms / 2, so keep it short by default.
    session_timeout_ms: int = 6_000
    heartbeat_interval_ms: int = 1_000
    # How long the broker may hold a fetch that finds no new record: bounds how long a record
    # arriving just after an empty fetch waits before a consumer sees it.
    fetch_max_wait_ms: int = Field(default=50, ge=0)


class PostgresSettings(BaseModel):
    """Where the evaluation store lives.

    With no `dsn` the embedded PostgreSQL server is started and used.
    """

    dsn: SecretStr | None = None
    db_schema: str = Field(default="alcance", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    pool_min_size: int = 1
    pool_max_size: int = 8
    command_timeout_s: float = 60.0


class TelemetrySettings(BaseModel):
    """OpenTelemetry traces and metrics; nothing is exported unless asked for."""

    exporter: Literal["none", "console", "otlp"] = "none"
    otlp_endpoint: str | None = None
    service_name: str = "alcance"
    metric_export_interval_ms: int = 30_000


class LogSettings(BaseModel):
    """How the process logs: human-readable text by default, JSON lines on request."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class PseudonymSettings(BaseModel):
    """Keys of the keyed HMAC-SHA-256 pseudonyms computed at the edge.

    Person and organisation keys are separate so that one leaked key does not expose both domains.
    Without keys the local run creates random ones in the state directory and reuses them.
    """

    person_key: SecretStr | None = None
    org_key: SecretStr | None = None


class ProcessorSettings(BaseModel):
    """Tuning of the indicator processors."""

    batch_max_records: int = Field(default=2_000, ge=1)
    batch_timeout_ms: int = Field(default=200, ge=1)
    processes: int = Field(default=1, ge=1)
    # Cells with fewer units than this are suppressed in reads for external audiences.
    small_cell_threshold: int = Field(default=5, ge=1)
    # Value-added coefficient m applied to business volume in ROI (domain catalogue 5.3).
    roi_margin_coefficient: float = Field(default=1.0, gt=0, le=1)
    # Grace period after an offering ends before its cohort counts as closed.
    cohort_grace_days: int = Field(default=14, ge=0)
    # Run the outbox relay inside every processor (one relays at a time). Turn off where the relay
    # runs as its own process (`python -m processors.outbox`), so its rounds never delay a batch.
    relay: bool = True
    # Outbox marks the relay takes per round; each month mark publishes up to three cells.
    outbox_batch_size: int = Field(default=100_000, ge=1)
    # Largest share of the time the relay spends in rounds: after a long round it pauses so long that
    # changes coalesce, and batches keep the cores (see OutboxRelay.pause_after).
    relay_max_busy_share: float = Field(default=0.25, gt=0, le=1)
    # Pause between relay rounds: changes of one cell within it are published once, as its latest state.
    outbox_poll_interval_ms: int = Field(default=1_000, ge=1)


class ConnectorSettings(BaseModel):
    """Defaults shared by every pulling connector; a source entry may override the page size."""

    page_size: int = Field(default=500, ge=1)
    poll_interval_s: float = Field(default=5.0, gt=0)
    request_timeout_s: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    backoff_base_s: float = Field(default=0.2, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    lease_ttl_s: float = Field(default=30.0, gt=0)
    # Timestamp cursors re-read this much overlap; deterministic event ids absorb the duplicates.
    cursor_overlap_s: float = Field(default=1.0, ge=0)
    # A page whose records cannot be resolved (`prepare_page`) this many times in a row is split in
    # halves; a single record that still fails is dead-lettered with the reason, and the source moves on.
    record_max_attempts: int = Field(default=4, ge=1)
    # A page that fails to be fetched this many times in a row with the same reason is asked for again
    # with half as many records, so that the records before the one that breaks it pass.
    page_split_after: int = Field(default=3, ge=1)


class SourceConfig(BaseModel):
    """One source instance to pull from (a `[[sources]]` table of the TOML file)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    kind: str
    endpoint: str
    username: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    page_size: int | None = Field(default=None, ge=1)
    options: dict[str, Any] = Field(default_factory=dict)


class IntakeSettings(BaseModel):
    """The push intake endpoint for platforms that send xAPI statements or Caliper envelopes."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8_700
    token: SecretStr | None = None
    source_name: str = "push-intake"


class Settings(BaseSettings):
    """Everything alcance can be told; read from the environment and, when given, a TOML file."""

    model_config = SettingsConfigDict(
        env_prefix="ALCANCE_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    state_dir: Path = Path(".alcance")
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    log: LogSettings = Field(default_factory=LogSettings)
    pseudonym: PseudonymSettings = Field(default_factory=PseudonymSettings)
    processor: ProcessorSettings = Field(default_factory=ProcessorSettings)
    connector: ConnectorSettings = Field(default_factory=ConnectorSettings)
    intake: IntakeSettings = Field(default_factory=IntakeSettings)
    sources: list[SourceConfig] = Field(default_factory=list)
    # Seed of the simulated sources used when no real source is configured.
    simulation_seed: int = 503
    simulation_scale: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _source_names_are_unique(self) -> Settings:
        names = [source.name for source in self.sources]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"source names must be unique, repeated: {', '.join(duplicates)}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Order the sources: explicit arguments, then the environment, then the TOML file."""
        # Explicit arguments win, then the environment, then the TOML file named by load_settings.
        toml_file = _toml_file_in_use
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


_toml_file_in_use: Path | None = None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read the settings from the environment and, when given, a TOML file.

    Raises:
        FileNotFoundError: when `config_file` does not exist.
        pydantic.ValidationError: when a value is invalid; secrets are not echoed in the message.
    """
    global _toml_file_in_use
    if config_file is not None and not config_file.is_file():
        raise FileNotFoundError(f"configuration file not found: {config_file}")
    _toml_file_in_use = config_file
    try:
        return Settings(**overrides)
    finally:
        _toml_file_in_use = None


def settings_as_environment(settings: Settings) -> dict[str, str]:
    """`settings` as `ALCANCE_*` environment variables, secrets included, for child processes.

    Each section becomes one JSON-valued variable (pydantic-settings parses JSON for nested models), so
    a child started with this environment sees exactly the parent's resolved settings.
    """

    def reveal(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, BaseModel):
            return {name: reveal(getattr(value, name)) for name in type(value).model_fields}
        if isinstance(value, list):
            return [reveal(item) for item in value]
        if isinstance(value, dict):
            return {key: reveal(item) for key, item in value.items()}
        if isinstance(value, Path):
            return str(value)
        return value

    environment: dict[str, str] = {}
    for name in Settings.model_fields:
        value = reveal(getattr(settings, name))
        environment[f"ALCANCE_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return environment
