"""One Apache Kafka node (broker and KRaft controller) on 127.0.0.1, its log kept in the state directory."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import signal
import time
import uuid
from pathlib import Path

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError

from infra.broker.jars import find_java, log4j_config_path, require_jars
from infra.broker.scram import SASL_MECHANISM, ScramUsers
from infra.processes import (
    BIND_ATTEMPTS,
    HOST,
    Child,
    LocalStackError,
    StoredPort,
    free_port,
    last_error_line,
    proc_cmdline,
    spawn,
    stop_foreign_process,
    wait_until_ready,
    write_private,
)
from infra.roles import ADMIN

logger = logging.getLogger(__name__)

# The broker's main class, and the tool that formats a new log directory.
_MAIN = "kafka.Kafka"
_STORAGE_TOOL = "kafka.tools.StorageTool"
# SIGTERM runs Kafka's shutdown hook (controlled shutdown, logs flushed, clean-shutdown marker); the JVM
# then exits with 143. A single node stops in seconds.
_STOP_TIMEOUT_S = 30.0
# A small heap and the serial collector suit one node on two shared cores.
_JVM_OPTIONS = [
    "-Xms128m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
]
_FORMAT_ATTEMPTS = 2
# The one-off format run is short: the quick compiler alone starts fastest.
_FORMAT_JVM_OPTIONS = ["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
# Largest record batch the broker accepts, and so every producer's limit (infra.kafka); Kafka's default.
MESSAGE_MAX_BYTES = 1_048_588

# Settings of one combined node with a static quorum: the quorum-state file stores voter ids, not
# addresses, so the controller port may change between runs. Internal topics have one replica and one
# partition, groups join without delay, and the session timeout may be as short as the tests use.
# Clients authenticate with SCRAM-SHA-512 (users kept in the cluster's metadata, the first ones written
# at format time); the controller listener takes the admin alone, by SASL/PLAIN with its password in
# this file, because SCRAM users live in the metadata the controller serves. The StandardAuthorizer
# denies whatever no ACL allows; the admin is the super user (the broker itself is the admin too).
_SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{controller_port}
controller.listener.names=CONTROLLER
listeners=CLIENTS://{host}:{broker_port},CONTROLLER://{host}:{controller_port}
advertised.listeners=CLIENTS://{host}:{broker_port}
inter.broker.listener.name=CLIENTS
listener.security.protocol.map=CLIENTS:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.clients.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.clients.scram-sha-512.sasl.jaas.config=\
org.apache.kafka.common.security.scram.ScramLoginModule required \
username="{admin}" password="{admin_password}";
listener.name.controller.sasl.enabled.mechanisms=PLAIN
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.plain.sasl.jaas.config=\
org.apache.kafka.common.security.plain.PlainLoginModule required \
username="{admin}" password="{admin_password}" user_{admin}="{admin_password}";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:{admin}
allow.everyone.if.no.acl.found=false
log.dirs={data_dir}
num.partitions=4
auto.create.topics.enable=false
message.max.bytes={message_max_bytes}
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
log.cleaner.dedupe.buffer.size=16777216
log.cleaner.backoff.ms=1000
num.network.threads=2
num.io.threads=4
background.threads=4
"""


def _another_free_port(taken: int) -> int:
    """A free port other than `taken`: a remembered broker port is free too until the broker binds it."""
    while (port := free_port()) == taken:
        pass
    return port


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, base64url without padding, not starting with '-'."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


class KafkaNode:
    """The local Apache Kafka 4.x node: formatted once, started on a remembered port, stopped cleanly.

    Its log lives in `<state_dir>/kafka/data` and survives restarts: a second run finds the same topics,
    offsets and dead letters. The JVM gets SIGTERM when we die (parent-death signal), so no orphan
    outlives a killed launcher; a JVM left by an older launcher is found by its pid file and stopped.

    Args:
        state_dir: The stack's state directory.
        cache_dir: Where the fetched jars are (see `infra.broker.jars`).
    """

    def __init__(self, state_dir: Path, cache_dir: Path) -> None:
        self.home = state_dir / "kafka"
        self.data_dir = self.home / "data"
        self.config_path = self.home / "server.properties"
        self.pid_path = self.home / "broker.pid"
        self.log_path = state_dir / "kafka.log"
        self.cache_dir = cache_dir
        self.stored_port = StoredPort(self.home / "broker.port")
        self.users = ScramUsers(self.home / "credentials")
        self.child: Child | None = None
        self.port = 0
        self._controller_port = 0

    @property
    def bootstrap_servers(self) -> str:
        """The broker's address."""
        return f"{HOST}:{self.port}"

    async def start(self, timeout_s: float) -> None:
        """Format the log directory if new, start the node and wait until it answers Metadata.

        Raises:
            LocalStackError: when Java 17+ or the jars are missing, or the node does not come up.
        """
        started_at = time.monotonic()
        java = find_java()
        libs = require_jars(self.cache_dir)
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "tmp").mkdir(exist_ok=True)
        self._stop_orphan_of_dead_run()
        classpath = f"{libs}/*"
        for attempt in range(1, BIND_ATTEMPTS + 1):
            broker_port = self.stored_port.pick(attempt)
            self._write_config(broker_port, _another_free_port(broker_port))
            if not (self.data_dir / "meta.properties").exists():
                await self._format(str(java.executable), classpath)
                self.users.record(set(self.users.by_username()))
            self.child = self._spawn_node(str(java.executable), classpath)
            try:
                await self._wait_ready(self.child, timeout_s)
            except LocalStackError:
                retry = self.child.lost_port_race() and attempt < BIND_ATTEMPTS
                await self.stop()
                if retry:
                    continue
                raise
            except BaseException:
                await self.stop()
                raise
            self.stored_port.remember(self.port)
            logger.info(
                "local Apache Kafka broker ready on %s (log in %s) in %.2f s",
                self.bootstrap_servers,
                self.data_dir,
                time.monotonic() - started_at,
            )
            return

    async def restart(self, timeout_s: float, *, kill: bool, down_s: float = 0.0) -> None:
        """Stop the node (SIGKILL when `kill`, as a crash would) and start it again on the same port."""
        if self.child is None:
            raise LocalStackError("the local Kafka broker is not running")
        java, libs = find_java(), require_jars(self.cache_dir)
        if kill:
            self.child.signal_group(signal.SIGKILL)
            await self.child.wait(10.0)
            self.child = None
        else:
            await self.stop()
        await asyncio.sleep(down_s)
        self.child = self._spawn_node(str(java.executable), f"{libs}/*")
        await self._wait_ready(self.child, timeout_s)
        logger.info("local Kafka broker restarted on %s", self.bootstrap_servers)

    async def stop(self) -> None:
        """SIGTERM and wait for Kafka's clean shutdown; SIGKILL if it takes longer than 30 s."""
        if self.child is None:
            return
        child, self.child = self.child, None
        await child.stop(signal.SIGTERM, _STOP_TIMEOUT_S)
        self.pid_path.unlink(missing_ok=True)

    @property
    def passwords(self) -> dict[str, str]:
        """Each principal's password, by its key in `infra.roles`."""
        return self.users.passwords

    @property
    def admin_password(self) -> str:
        """The password of the broker's super user (`infra.roles.ADMIN`)."""
        return self.users.admin_password

    def _spawn_node(self, java: str, classpath: str) -> Child:
        child = spawn(
            "kafka broker",
            [java, *self._jvm_options(), "-cp", classpath, _MAIN, str(self.config_path)],
            self.log_path,
            # SIGTERM, not SIGKILL: Kafka's shutdown hook then leaves a clean log behind.
            death_signal=signal.SIGTERM,
        )
        self.pid_path.write_text(f"{child.pid}\n")
        return child

    def _jvm_options(self) -> list[str]:
        tmp = self.home / "tmp"
        return [
            *_JVM_OPTIONS,
            f"-Dlog4j2.configurationFile={log4j_config_path()}",
            # snappy and zstd unpack native code into a temporary folder: one we know is executable.
            f"-Dorg.xerial.snappy.tempdir={tmp}",
            f"-DZstdTempFolder={tmp}",
        ]

    def _write_config(self, broker_port: int, controller_port: int) -> None:
        self.port, self._controller_port = broker_port, controller_port
        write_private(
            self.config_path,
            _SERVER_PROPERTIES.format(
                admin=ADMIN.username,
                admin_password=self.admin_password,
                host=HOST,
                broker_port=broker_port,
                controller_port=controller_port,
                data_dir=self.data_dir,
                message_max_bytes=MESSAGE_MAX_BYTES,
            ),
        )

    async def _format(self, java: str, classpath: str) -> None:
        logger.info("formatting a new Kafka log directory in %s", self.data_dir)
        arguments = [
            *_FORMAT_JVM_OPTIONS,
            f"-Dlog4j2.configurationFile={log4j_config_path()}",
            "-cp",
            classpath,
            _STORAGE_TOOL,
            "format",
            "--config",
            str(self.config_path),
            "--cluster-id",
            new_cluster_id(),
            "--ignore-formatted",
        ]
        arguments += self.users.format_arguments()
        # The passwords go through a Java argument file (owner-only, removed after), never the command
        # line that every user of the host can read in /proc; the tool prints only salted keys.
        argument_file = self.home / "format.args"
        for attempt in range(1, _FORMAT_ATTEMPTS + 1):
            write_private(argument_file, "\n".join(arguments) + "\n")
            argv = [java, f"@{argument_file}"]
            child = spawn("kafka storage format", argv, self.log_path, death_signal=signal.SIGKILL)
            try:
                if not await child.wait(120.0):
                    child.signal_group(signal.SIGKILL)
                    await child.wait(5.0)
            finally:
                argument_file.unlink(missing_ok=True)
            if child.process.returncode == 0:
                return
            output = child.log_tail()
            if attempt == _FORMAT_ATTEMPTS:
                raise LocalStackError(
                    f"formatting the Kafka log directory failed with code {child.process.returncode}: "
                    f"{last_error_line(output)}; its output ({self.log_path}):\n{output}"
                )
            # Formatting is idempotent (--ignore-formatted): a JVM that failed to start is tried again.
            logger.warning(
                "formatting the Kafka log directory failed (%s); trying again", last_error_line(output)
            )
            await asyncio.sleep(1.0)

    def _stop_orphan_of_dead_run(self) -> None:
        """Stop a JVM an older launcher left on this log directory (the caller holds the state-dir lock)."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return
        argv = proc_cmdline(pid)
        if _MAIN in argv and str(self.config_path) in argv:
            logger.warning(
                "stopping the Kafka broker (pid %d) left running on %s by a dead run", pid, self.home
            )
            stop_foreign_process(
                pid, "Kafka broker", ((signal.SIGTERM, _STOP_TIMEOUT_S), (signal.SIGKILL, 5.0))
            )
        self.pid_path.unlink(missing_ok=True)

    async def _wait_ready(self, child: Child, timeout_s: float) -> None:
        await wait_until_ready(
            child,
            f"Kafka broker on {self.bootstrap_servers}",
            lambda: self._answers_metadata(child),
            timeout_s,
            0.1,
        )

    async def _answers_metadata(self, child: Child) -> bool:
        # The broker opens its port only once it is unfenced and ready; a plain TCP probe first, so that
        # aiokafka does not log a connection error per attempt.
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(HOST, self.port), 1.0)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        try:
            await self.users.add_missing(self._controller_port)
        except (OSError, KafkaError) as exc:
            logger.debug("local Kafka broker not ready for SCRAM users yet: %r", exc)
            return False
        client = AIOKafkaClient(
            bootstrap_servers=self.bootstrap_servers,
            request_timeout_ms=2_000,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism=SASL_MECHANISM,
            sasl_plain_username=ADMIN.username,
            sasl_plain_password=self.admin_password,
        )
        # If our broker failed to bind, whatever else listens there may never answer: stop asking as
        # soon as the broker exits.
        bootstrap = asyncio.ensure_future(client.bootstrap())
        exited = asyncio.ensure_future(child.wait(2.0))
        try:
            await asyncio.wait({bootstrap, exited}, timeout=2.0, return_when=asyncio.FIRST_COMPLETED)
        finally:
            bootstrap.cancel()
            exited.cancel()
            outcome = (await asyncio.gather(bootstrap, exited, return_exceptions=True))[0]
            await client.close()
        if isinstance(outcome, BaseException):
            logger.debug("local Kafka broker not ready yet: %r", outcome)
            return False
        return child.alive()
