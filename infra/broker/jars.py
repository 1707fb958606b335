"""Java and the Apache Kafka jars: found, checked, and fetched once from Maven Central with Maven."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from infra.processes import LocalStackError

logger = logging.getLogger(__name__)

MIN_JAVA = 17
# Pinned so the fetch behaves the same everywhere; 3.8.1 needs Maven 3.6.3 or newer.
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
_COMPLETE = ".complete"
_JAVA_VERSION = re.compile(r'version "(?P<major>\d+)(?:\.(?P<minor>\d+))?')


def pom_path() -> Path:
    """The Maven file that pins the broker's jars."""
    return Path(str(resources.files("infra.broker").joinpath("pom.xml")))


def log4j_config_path() -> Path:
    """The broker's logging configuration."""
    return Path(str(resources.files("infra.broker").joinpath("log4j2.properties")))


def kafka_version() -> str:
    """The Kafka version the pom pins (`<kafka.version>`)."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom_path().read_text())
    if match is None:
        raise LocalStackError(f"{pom_path()} names no <kafka.version>")
    return match.group(1).strip()


def jars_dir(cache_dir: Path) -> Path:
    """Where the pinned jars live: keyed by version and the pom's content, so a change refetches."""
    digest = hashlib.sha256(pom_path().read_bytes()).hexdigest()[:12]
    return cache_dir.expanduser().resolve() / f"kafka-{kafka_version()}-{digest}" / "libs"


def jars_present(cache_dir: Path) -> bool:
    """Whether a complete fetch of the pinned jars is in the cache."""
    return (jars_dir(cache_dir) / _COMPLETE).exists()


@dataclass(frozen=True)
class Java:
    """A Java runtime able to run the broker."""

    executable: Path
    major: int


def find_java() -> Java:
    """The Java 17+ runtime to run the broker: `$JAVA_HOME/bin/java`, else `java` on the PATH.

    JAVA_HOME is read directly: it is the Java ecosystem's own convention, not an alcance setting.

    Raises:
        LocalStackError: when none is found or it is older than Java 17, saying what to install.
    """
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    if candidate is None or not candidate.is_file():
        found = shutil.which("java")
        candidate = Path(found) if found else None
    if candidate is None:
        raise LocalStackError(_no_java("no `java` was found on the PATH or in JAVA_HOME"))
    try:
        probe = subprocess.run(  # noqa: S603  # the Java found above, asked for its version
            [str(candidate), "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalStackError(_no_java(f"{candidate} -version failed: {exc}")) from exc
    match = _JAVA_VERSION.search(probe.stderr + probe.stdout)
    if match is None:
        raise LocalStackError(_no_java(f"{candidate} -version printed no version"))
    major = int(match.group("major"))
    # Java 8 and older call themselves "1.8".
    if major == 1 and match.group("minor"):
        major = int(match.group("minor"))
    if major < MIN_JAVA:
        raise LocalStackError(_no_java(f"{candidate} is Java {major}"))
    return Java(candidate, major)


def _no_java(what: str) -> str:
    return (
        f"the local Kafka broker needs Java {MIN_JAVA} or newer, and {what}. Install one "
        "(Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`) or set ALCANCE_KAFKA__BOOTSTRAP_SERVERS "
        "to a running Kafka cluster"
    )


def require_jars(cache_dir: Path) -> Path:
    """The directory of the pinned jars.

    Raises:
        LocalStackError: when they were never fetched, saying how to fetch them.
    """
    if not jars_present(cache_dir):
        raise LocalStackError(
            f"the Apache Kafka {kafka_version()} jars are not in {jars_dir(cache_dir).parent}: run "
            "`alcance broker fetch` (or `make`) once, which needs Maven 3.6.3+ and Maven Central; "
            "ALCANCE_CACHE_DIR moves the cache, ALCANCE_KAFKA__BOOTSTRAP_SERVERS uses a running cluster"
        )
    return jars_dir(cache_dir)


def fetch_jars(cache_dir: Path) -> Path:
    """Copy the pinned jars from Maven Central into the cache, once; return their directory.

    The copy goes to a sibling folder first and is renamed into place, so an interrupted fetch never
    leaves a half set that looks complete.

    Raises:
        LocalStackError: when Maven is missing or the fetch fails, with Maven's last lines.
    """
    target = jars_dir(cache_dir)
    if jars_present(cache_dir):
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalStackError(
            "fetching the Apache Kafka jars needs Maven (`mvn`, 3.6.3 or newer) on the PATH: install it "
            "(Debian/Ubuntu: `apt-get install maven`), or set ALCANCE_KAFKA__BOOTSTRAP_SERVERS to a "
            "running cluster"
        )
    staging = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    logger.info("fetching the Apache Kafka %s jars into %s", kafka_version(), target)
    argv = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(pom_path()),
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603  # fixed argv
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise LocalStackError(
            f"Maven could not fetch the Apache Kafka jars (exit {result.returncode}):\n{tail}"
        )
    _check_logging_jars(staging)
    (staging / _COMPLETE).write_text(f"{kafka_version()}\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def _check_logging_jars(libs: Path) -> None:
    """Exactly one slf4j API and its log4j2 binding: without them the broker runs but logs nothing."""
    for pattern in ("slf4j-api-*.jar", "log4j-slf4j-impl-*.jar", "log4j-core-*.jar"):
        found = list(libs.glob(pattern))
        if len(found) != 1:
            raise LocalStackError(
                f"the fetched broker jars hold {len(found)} files matching {pattern}, not one"
            )
