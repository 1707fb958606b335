"""Who may do what: alcance's PostgreSQL roles and Kafka principals, and the least privilege of each.

Every component connects under its own identity, picked from the settings with `store_settings_for`
and `kafka_settings_for`; where the settings hold no identity of its own, the component uses the
configured one (`postgres.dsn`, `kafka.sasl_username`), so a deployment with one user keeps working.

PostgreSQL (privileges granted by every migration run, `infra.store_grants`, to the roles that exist):

- owner (`postgres.dsn`; locally `alcance_owner`): migrations, `alcance recompute`, the CLI; owns the
  schema and every object in it.
- `alcance_processor`: processors, connectors (checkpoints, leases, health), the relay; reads and
  writes the tables, reads the views; no DDL.
- `alcance_reader`: BI tools, through a login that is a member (locally `alcance_bi`); reads the views.
- `alcance_web`: the web app and its API; reads the views and the read model's tables, reads and
  writes its own `web_*` tables.

A new role (the directory's, say) is a `StoreRole` here, listed in `STORE_ROLES` and `GRANTED_ROLES`,
with its rule in `infra.store_grants.privileges_of`; the local stack then creates its login and every
migration run grants it. A new table of the web app is named `web_...` and is then the web role's (read
and write) with no further grant; every view is readable by every role.

Kafka (ACLs created by `infra.kafka_acls` for the catalogue's topics when `kafka.manage_acls` is on):

- admin (`kafka.sasl_username`): everything (the local broker's super user): creates topics and ACLs.
- `connector-<family>`: writes its family's topic and that topic's dead letters.
- `processor`: reads the input topics (group `indicators`), writes dead letters and the indicators topic.
- `relay`: writes the indicators topic.
- `reader`: reads the indicators topic.

Every principal reads the log-identity topic. A connector process opens one producer per family it
publishes, each under that family's principal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import SecretStr

from infra.config_check import ConfigurationError
from infra.settings import KafkaLogin, KafkaSettings, PostgresSettings
from schemas.topics import FAMILIES, INDICATORS_GROUP

if TYPE_CHECKING:
    from schemas.topics import TopicCatalogue


@dataclass(frozen=True)
class StoreRole:
    """A PostgreSQL role of alcance.

    Attributes:
        key: its name in the settings (`postgres.role_dsns`) and in the local state directory.
        name: the role in PostgreSQL, holding the privileges.
        login: the login the local stack creates: the role itself, or a member of it.
        purpose: who uses it (printed by `alcance db roles`).
    """

    key: str
    name: str
    login: str
    purpose: str


OWNER = StoreRole("owner", "alcance_owner", "alcance_owner", "migrations; owns the schema and its objects")
PROCESSOR = StoreRole(
    "processor", "alcance_processor", "alcance_processor", "processors, connectors' checkpoints, the relay"
)
READER = StoreRole("reader", "alcance_reader", "alcance_bi", "BI tools: reads the views only")
WEB = StoreRole("web", "alcance_web", "alcance_web", "the web app: the read model and its own web_* tables")

STORE_ROLES: tuple[StoreRole, ...] = (OWNER, PROCESSOR, READER, WEB)
"""Every role of the store; the local stack creates each with a login and a password of its own."""

GRANTED_ROLES: tuple[StoreRole, ...] = (PROCESSOR, READER, WEB)
"""The roles that receive privileges on the schema (the owner has them all by owning it)."""

DIRECTORY_OWNER = "alcance_directory_owner"
DIRECTORY_API = "alcance_directory_api"
DIRECTORY_WRITER = "alcance_directory_writer"
DIRECTORY_ROLE_MEMBERS: dict[str, tuple[StoreRole, ...]] = {
    DIRECTORY_OWNER: (OWNER,),
    DIRECTORY_API: (OWNER, WEB),
    DIRECTORY_WRITER: (OWNER, PROCESSOR, WEB),
}
"""The PLGN directory's roles (`directory.schema`, NOLOGIN) and the logins that may `SET ROLE` to each.

Membership is granted WITHOUT INHERIT (the owner login's of the directory owner role aside, which runs
the migrations and the CLI's checks of the log): a login holds none of a directory role's privileges,
and no row-level security policy of one applies to it, until it switches to that role for a transaction.
"""

MIGRATIONS_TABLE = "schema_migration"
WEB_TABLE_PREFIX = "web_"
"""Tables the web app creates in its migrations are named so; the web role reads and writes them."""

READ_MODEL_TABLES: frozenset[str] = frozenset(
    {
        "connector_checkpoint",
        "country",
        "indicator_cell",
        "indicator_definition",
        "indicator_member",
        "indicator_outbox",
        "indicator_part",
        "indicator_report",
        "indicator_rollup",
        "indicator_rollup_member",
        "indicator_rollup_state",
        "indicator_snapshot",
        "indicator_snapshot_state",
        "indicator_stale",
        "kafka_offset",
        "reach_target",
        "source_health",
    }
)
"""The tables the read API (`processors.read`) and the data-health view (`infra.status`: positions of
processors and sources) read, and so the web role may read."""


def store_settings_for(pg: PostgresSettings, role: StoreRole) -> PostgresSettings:
    """`pg` with the DSN of `role` when the settings hold one, else `pg` unchanged (one user for all)."""
    dsn = pg.role_dsns.get(role.key)
    return pg if dsn is None else pg.model_copy(update={"dsn": dsn})


@dataclass(frozen=True)
class KafkaPrincipal:
    """A Kafka identity: `key` in `kafka.logins`, `username` the SCRAM user of the local broker."""

    key: str
    username: str


ADMIN = KafkaPrincipal("admin", "alcance-admin")
PROCESSOR_PRINCIPAL = KafkaPrincipal("processor", "alcance-processor")
RELAY_PRINCIPAL = KafkaPrincipal("relay", "alcance-relay")
READER_PRINCIPAL = KafkaPrincipal("reader", "alcance-reader")


def connector_principal(family: str) -> KafkaPrincipal:
    """The principal of the connectors publishing events of `family`."""
    return KafkaPrincipal(f"connector-{family}", f"alcance-connector-{family}")


KAFKA_PRINCIPALS: tuple[KafkaPrincipal, ...] = (
    ADMIN,
    PROCESSOR_PRINCIPAL,
    RELAY_PRINCIPAL,
    READER_PRINCIPAL,
    *(connector_principal(family) for family in FAMILIES),
)
"""Every principal; the local broker has a SCRAM user for each (the admin is its super user)."""


def kafka_settings_for(kafka: KafkaSettings, principal: KafkaPrincipal) -> KafkaSettings:
    """`kafka` authenticating as `principal` when the settings hold its login, else `kafka` unchanged."""
    login = kafka.logins.get(principal.key)
    if login is None:
        return kafka
    return kafka.model_copy(update={"sasl_username": login.username, "sasl_password": login.password})


def check_identity_keys(kafka: KafkaSettings, postgres: PostgresSettings) -> None:
    """Refuse `kafka.logins` and `postgres.role_dsns` keys that name no principal or role.

    A misspelt key would otherwise leave its component on the shared login without a word.

    Raises:
        ConfigurationError: naming the key and the valid ones (never a value).
    """
    problems: list[str] = []
    for setting, keys, valid in (
        ("kafka.logins", kafka.logins, [p.key for p in KAFKA_PRINCIPALS if p is not ADMIN]),
        ("postgres.role_dsns", postgres.role_dsns, [r.key for r in GRANTED_ROLES]),
    ):
        problems += [
            f"unknown key {key!r} in {setting} (valid: {', '.join(valid)})"
            for key in keys
            if key not in valid
        ]
    if problems:
        raise ConfigurationError("; ".join(problems))


def kafka_logins(passwords: dict[str, str]) -> dict[str, KafkaLogin]:
    """The `kafka.logins` setting for the local broker's principals, from their passwords by key."""
    return {
        principal.key: KafkaLogin(username=principal.username, password=SecretStr(passwords[principal.key]))
        for principal in KAFKA_PRINCIPALS
        if principal is not ADMIN
    }


@dataclass(frozen=True)
class AclRule:
    """One thing a principal may do: `operation` on a topic or consumer group named literally."""

    principal: KafkaPrincipal
    resource: Literal["topic", "group"]
    name: str
    operation: Literal["READ", "WRITE", "DESCRIBE"]


def acl_rules(catalogue: TopicCatalogue) -> list[AclRule]:
    """What each principal other than the admin may do on the topics and groups of `catalogue`."""
    rules: list[AclRule] = []

    def topic(principal: KafkaPrincipal, name: str, operation: Literal["READ", "WRITE"]) -> None:
        rules.extend(
            [AclRule(principal, "topic", name, operation), AclRule(principal, "topic", name, "DESCRIBE")]
        )

    for principal in KAFKA_PRINCIPALS:
        if principal is not ADMIN:
            topic(principal, catalogue.log_identity.name, "READ")
    for family in FAMILIES:
        spec = catalogue.family_topic(family)
        dead_letters = catalogue.dead_letter(spec).name
        topic(connector_principal(family), spec.name, "WRITE")
        topic(connector_principal(family), dead_letters, "WRITE")
        topic(PROCESSOR_PRINCIPAL, spec.name, "READ")
        topic(PROCESSOR_PRINCIPAL, dead_letters, "WRITE")
    rules.append(AclRule(PROCESSOR_PRINCIPAL, "group", catalogue.consumer_group(INDICATORS_GROUP), "READ"))
    topic(PROCESSOR_PRINCIPAL, catalogue.indicators.name, "WRITE")
    topic(RELAY_PRINCIPAL, catalogue.indicators.name, "WRITE")
    topic(READER_PRINCIPAL, catalogue.indicators.name, "READ")
    return rules
