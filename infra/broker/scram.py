"""The local broker's SCRAM users: one per principal (`infra.roles`), passwords kept owner-only."""

from __future__ import annotations

import logging
from pathlib import Path

from aiokafka.conn import create_conn

from infra.kafka_acls import upsert_scram_users
from infra.processes import HOST, stored_secret, write_private
from infra.roles import ADMIN, KAFKA_PRINCIPALS

logger = logging.getLogger(__name__)

SASL_MECHANISM = "SCRAM-SHA-512"


class ScramUsers:
    """The principals' passwords (`<folder>/<key>.password`) and the users the cluster has.

    A new log gets every user at format time (`format_arguments`); a log that lacks some (formatted by
    an older version without any, or before a principal was added) gets them through the controller
    listener, where the admin logs in with SASL/PLAIN (`add_missing`).
    """

    def __init__(self, folder: Path) -> None:
        self.passwords = {
            principal.key: stored_secret(folder / f"{principal.key}.password")
            for principal in KAFKA_PRINCIPALS
        }
        self._recorded_path = folder / "scram-users"

    @property
    def admin_password(self) -> str:
        """The password of the broker's super user (`infra.roles.ADMIN`)."""
        return self.passwords[ADMIN.key]

    def by_username(self) -> dict[str, str]:
        """Every principal's SCRAM user name and password."""
        return {principal.username: self.passwords[principal.key] for principal in KAFKA_PRINCIPALS}

    def format_arguments(self) -> list[str]:
        """`kafka-storage format` arguments that write every user into a new log."""
        arguments: list[str] = []
        for name, password in self.by_username().items():
            arguments += ["--add-scram", f"{SASL_MECHANISM}=[name={name},password={password}]"]
        return arguments

    def record(self, names: set[str]) -> None:
        """Remember that the cluster has the users `names`."""
        write_private(self._recorded_path, "".join(f"{name}\n" for name in sorted(self._recorded() | names)))

    def missing(self) -> dict[str, str]:
        """The users the cluster lacks, with their passwords."""
        recorded = self._recorded()
        return {name: password for name, password in self.by_username().items() if name not in recorded}

    async def add_missing(self, controller_port: int) -> None:
        """Create the users the cluster lacks, through the controller listener.

        Raises:
            OSError, aiokafka.errors.KafkaError: when the controller is not reachable yet or refuses.
        """
        missing = self.missing()
        if not missing:
            return
        connection = await create_conn(
            HOST,
            controller_port,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="PLAIN",
            sasl_plain_username=ADMIN.username,
            sasl_plain_password=self.admin_password,
        )
        try:
            await upsert_scram_users(connection.send, missing)
        finally:
            connection.close()
        self.record(set(missing))
        logger.info("created Kafka SCRAM users %s", ", ".join(sorted(missing)))

    def _recorded(self) -> set[str]:
        try:
            return set(self._recorded_path.read_text().split())
        except FileNotFoundError:
            return set()
