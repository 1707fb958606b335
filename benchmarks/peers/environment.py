"""The peers' virtualenv, `.venv/peers-<hash>`, made once from the exact versions in `requirements.txt`.

The peers' dependencies (Quix Streams, confluent-kafka, RocksDB bindings) never enter alcance's lock file.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.venvs import private_python

REQUIREMENTS = Path(__file__).with_name("requirements.txt")


def peers_python() -> Path:
    """The Python of the peers' virtualenv, creating and filling it first when it is missing."""
    return private_python("peers", REQUIREMENTS)
