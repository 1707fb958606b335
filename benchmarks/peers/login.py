"""The broker login a peer process gets from the benchmark, in its environment (none on an open broker).

The benchmark sets `PEER_SECURITY_PROTOCOL`, `PEER_SASL_MECHANISM`, `PEER_SASL_USERNAME` and
`PEER_SASL_PASSWORD` (`launch.sasl_environment`); the password never travels on a command line.
"""

from __future__ import annotations

import os


def aiokafka_login() -> dict[str, str]:
    """aiokafka's login options (empty on an open broker)."""
    if "PEER_SASL_USERNAME" not in os.environ:
        return {}
    return {
        "security_protocol": os.environ["PEER_SECURITY_PROTOCOL"],
        "sasl_mechanism": os.environ["PEER_SASL_MECHANISM"],
        "sasl_plain_username": os.environ["PEER_SASL_USERNAME"],
        "sasl_plain_password": os.environ["PEER_SASL_PASSWORD"],
    }


def librdkafka_login() -> dict[str, str]:
    """The same login as librdkafka (confluent-kafka) configuration properties."""
    if "PEER_SASL_USERNAME" not in os.environ:
        return {}
    return {
        "security.protocol": os.environ["PEER_SECURITY_PROTOCOL"].lower(),
        "sasl.mechanism": os.environ["PEER_SASL_MECHANISM"],
        "sasl.username": os.environ["PEER_SASL_USERNAME"],
        "sasl.password": os.environ["PEER_SASL_PASSWORD"],
    }
