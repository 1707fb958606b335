"""The one settings tree of alcance: environment (`ALCANCE_`, nested with `__`) plus an optional TOML file."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from infra.config_check import (
    ConfigurationError,
    describe_validation_error,
    read_toml,
    unknown_environment_variables,
    unknown_toml_keys,
)


def default_cache_dir() -> Path:
    """The per-user cache: `$XDG_CACHE_HOME/alcance`, else `~/.cache/alcance`.

    Found from any working directory, so `alcance` run from another folder still finds the broker jars.
    """
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "alcance"


class KafkaLogin(BaseModel):
    """The SASL user and password of one principal (see `infra.roles`)."""

    username: str = Field(min_length=1)
    password: SecretStr


class KafkaSettings(BaseModel):
    """Where the Kafka cluster is and how to talk to it.

    With no `bootstrap_servers` the local Apache Kafka broker is started and used. `sasl_username` is
    the identity of setup work (topics, ACLs); `logins` holds each component's own (keys in
    `infra.roles`: `processor`, `relay`, `reader`, `connector-<family>`), which falls back to it.
    """

    bootstrap_servers: str | None = None
    topic_prefix: str = "alcance."
    client_id: str = "alcance"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    logins: dict[str, KafkaLogin] = Field(default_factory=dict)
    # Create the ACLs each principal needs on the catalogue's topics (needs an authorizer on the
    # cluster and ALTER on it for `sasl_username`); the local broker turns it on.
    manage_acls: bool = False
    # Idempotent producers: a broker retry never writes a record twice or out of order. Correctness
    # does not depend on it (event ids are deterministic and consumers de-duplicate), so a cluster that
    # denies it to alcance's principal can run with it off.
    enable_idempotence: bool = True
    partitions: int = Field(default=4, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    request_timeout_ms: int = 30_000
    session_timeout_ms: int = 6_000
    heartbeat_interval_ms: int = 1_000
    # How long the broker may hold a fetch that finds no new record: bounds how long a record
    # arriving just after an empty fetch waits before a consumer sees it.
    fetch_max_wait_ms: int = Field(default=50, ge=0)


class PostgresSettings(BaseModel):
    """Where the evaluation store lives.

    With no `dsn` the embedded PostgreSQL server is started and used. `dsn` is the owner's (migrations);
    `role_dsns` holds each component's own (keys in `infra.roles`: `processor`, `reader`, `web`), which
    falls back to `dsn`. Pointing at another server means changing both (`LocalStack.resolve` does).
    """

    dsn: SecretStr | None = None
    role_dsns: dict[str, SecretStr] = Field(default_factory=dict)
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
    # Plausible dates: events before this instant, or later than now plus the allowance, are
    # dead-lettered (a typo'd year would otherwise be counted and open periods nobody reads).
    earliest_event_at: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    future_allowance_s: float = Field(default=86_400.0, ge=0)
    # Keep rollups (per period and grouping) of the indicators that qualify, in each batch, so reads of
    # them are index lookups. Off: the batches write fewer rows and those indicators are read from
    # the parts; turning it on later takes a recompute before reads use the rollups.
    rollups: bool = False
    # Keep the values of distinct and latest parts per month, quarter and year cell
    # (`processors.cell_values`: each batch notes what changed, the relay applies the notes), so the
    # relay publishes a changed cell by index lookups whatever the history. Off: the batches write fewer
    # rows and the relay merges each cell from its months, which grows with the history; turning it on
    # for a store with facts takes a recompute.
    cell_values: bool = True
    # Keep snapshots of the read model's results for the declared groupings (`processors.snapshots`):
    # the relay records which indicators changed, a refresher recomputes them at one instant, and reads
    # of "now" are served from them while no change to what they read is pending.
    snapshots: bool = True
    # Reads serve a snapshot no older than this; the refresher renews every snapshot at half this age.
    snapshot_max_age_s: float = Field(default=7_200.0, gt=0)
    # While changes to what a read needs are pending, a read of now is still served from snapshots no
    # older than this (their instant is reported); older ones, and 0, make it live. `fresh` reads are live.
    snapshot_max_lag_s: float = Field(default=3_600.0, ge=0)
    # Largest share of the time the refresher spends refreshing: after a refresh of X seconds it waits
    # X * (1 - share) / share (19X at 0.05), and changes coalesce meanwhile (see RefreshPacing).
    snapshot_max_busy_share: float = Field(default=0.05, gt=0, le=1)


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
    # A source failing this long without a success is logged at ERROR and marked failed; a run with
    # --until-idle then stops it and ends non-zero instead of retrying for ever.
    failure_deadline_s: float = Field(default=300.0, gt=0)


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


class IntakeClient(BaseModel):
    """One platform allowed to post to the push intake, known by the SHA-256 of its bearer token.

    `activities` (object id prefixes) and `registrations` (`context.registration` UUIDs), when given,
    are the only ones the client may post about; `revoked` shuts it out without forgetting it.
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    revoked: bool = False
    activities: list[str] = Field(default_factory=list)
    registrations: list[uuid.UUID] = Field(default_factory=list)


class ReachTargetConfig(BaseModel):
    """A CVF-16 target: unique certified learners planned for one art. 7 audience in one year.

    A `[[reach_targets]]` table of the TOML file; `alcance targets set` writes the same.
    """

    audience: Literal["TPO_AUTHORITY", "BUSINESS_CHAMBER", "SECTOR_ASSOCIATION", "MSME"]
    year: int = Field(ge=2000, le=2100)
    target: Decimal = Field(gt=0)
    source: str = Field(default="Programa de Actividades", min_length=1, max_length=200)


class IntakeSettings(BaseModel):
    """The push intake endpoint for platforms that send xAPI statements or Caliper envelopes.

    `token` is one unrestricted client ("default"); `clients` are per-platform credentials.
    """

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8_700
    token: SecretStr | None = None
    clients: list[IntakeClient] = Field(default_factory=list)
    source_name: str = "push-intake"
    # Largest request body, enforced while streaming and advertised to Caliper sensors.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Requests handled at once; more get 503 before their body is read.
    max_concurrent_requests: int = Field(default=8, ge=1)
    # Per-client token bucket: sustained requests per second and burst; beyond it 429.
    rate_per_s: float = Field(default=20.0, gt=0)
    rate_burst: int = Field(default=40, ge=1)
    # Serve HTTPS with this certificate chain and key (PEM); both or neither.
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None


class WebSettings(BaseModel):
    """The coordinators' web app and query API (`alcance serve`; `alcance run` unless `--no-web`).

    OpenID Connect login for coordinators is offered when `oidc_issuer` and `oidc_client_id` are set; the
    ID token's `oidc_role_claim` (a string or a list of strings) must hold `oidc_coordinator_value`.
    """

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8_470, ge=0, le=65_535)
    # The address people open, when it differs from http://host:port (a reverse proxy).
    public_url: str | None = None
    # Browser sessions end after this long without a request, and this long after sign-in in any case.
    session_idle_s: float = Field(default=1_800.0, gt=0)
    session_max_s: float = Field(default=43_200.0, gt=0)
    # A printed one-time login link works once, within this time.
    login_link_ttl_s: float = Field(default=900.0, gt=0)
    # Mark the session cookie Secure (set when the app is served over HTTPS).
    cookie_secure: bool = False
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    # Having an account at the provider is not enough: only people whose ID token carries this value in
    # this claim (`roles`, `groups`, or a namespaced URL) sign in as coordinators; others are refused.
    oidc_role_claim: str = Field(default="roles", pattern=r"^\S{1,200}$")
    oidc_coordinator_value: str = Field(default="alcance-coordinator", pattern=r"^\S{1,200}$")


class DirectorySettings(BaseModel):
    """The PLGN directory (art. 8): its own schema in the store, and where PLGN serves it.

    `feed_endpoint` is PLGN's activity feed (the consents), `directory_endpoint` its directory records.
    Without both, only the simulated PLGN of a run without configured sources fills the directory.
    """

    db_schema: str = Field(default="directory", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    feed_endpoint: str | None = None
    directory_endpoint: str | None = None
    token: SecretStr | None = None
    page_size: int = Field(default=200, ge=1, le=1_000)
    poll_interval_s: float = Field(default=60.0, gt=0)
    # Member states' OAuth2 client-credentials access tokens (JWT): accepted when all three are set.
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_jwks_url: str | None = None
    jwt_state_claim: str = "aladi_member_state"
    jwt_max_lifetime_s: float = Field(default=600.0, gt=0)


class Settings(BaseSettings):
    """Everything alcance can be told; read from the environment and, when given, a TOML file."""

    model_config = SettingsConfigDict(
        env_prefix="ALCANCE_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    state_dir: Path = Path(".alcance")
    # Downloaded artefacts shared by every state directory of this user: the Apache Kafka jars.
    cache_dir: Path = Field(default_factory=default_cache_dir)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    log: LogSettings = Field(default_factory=LogSettings)
    pseudonym: PseudonymSettings = Field(default_factory=PseudonymSettings)
    processor: ProcessorSettings = Field(default_factory=ProcessorSettings)
    connector: ConnectorSettings = Field(default_factory=ConnectorSettings)
    intake: IntakeSettings = Field(default_factory=IntakeSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    directory: DirectorySettings = Field(default_factory=DirectorySettings)
    sources: list[SourceConfig] = Field(default_factory=list)
    reach_targets: list[ReachTargetConfig] = Field(default_factory=list)
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


def load_settings(
    config_file: Path | None = None, *, environ: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    """Read the settings from the environment and, when given, a TOML file; strictly.

    Args:
        config_file: the TOML file, if any.
        environ: the environment checked for unknown `ALCANCE_*` variables (default `os.environ`).
        overrides: explicit values, which win over both.

    Raises:
        FileNotFoundError: when `config_file` does not exist.
        ConfigurationError: on a TOML syntax error, an unknown key or variable (with the closest valid
            name), or an invalid value; the message never quotes a value.
    """
    global _toml_file_in_use
    if config_file is not None and not config_file.is_file():
        raise FileNotFoundError(f"configuration file not found: {config_file}")
    problems = unknown_environment_variables(os.environ if environ is None else environ, Settings)
    if config_file is not None:
        problems += [f"{config_file}: {p}" for p in unknown_toml_keys(read_toml(config_file), Settings)]
    if problems:
        raise ConfigurationError("; ".join(problems))
    _toml_file_in_use = config_file
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        origin = f"{config_file} and the environment" if config_file is not None else "the environment"
        # `from None`: the ValidationError's own text quotes inputs, secrets included.
        raise ConfigurationError(describe_validation_error(exc, origin=origin)) from None
    finally:
        _toml_file_in_use = None
