"""What a failure of PostgreSQL or Kafka means: wait and try again, run the transaction again, or stop.

The one classification of infrastructure errors; every retry in alcance asks it. PostgreSQL errors
are classified by their asyncpg class, which asyncpg derives from the SQLSTATE class (``08...`` is
`PostgresConnectionError`, ``57...`` is `OperatorInterventionError`), never by message text. Kafka
errors by aiokafka's ``retriable`` flag.
"""

from __future__ import annotations

import enum

import asyncpg
from aiokafka.errors import KafkaError, KafkaTimeoutError


class Failure(enum.Enum):
    """What the caller of a failed operation does next."""

    TRANSIENT = "transient"
    """The service is unreachable, restarting or overloaded: wait (backoff) and call again."""
    RETRY_TRANSACTION = "retry-transaction"
    """PostgreSQL rolled the transaction back to break a conflict: run the whole transaction again."""
    FATAL = "fatal"
    """Retrying cannot help (a bug, a schema mismatch, a refused request): stop and report."""


# A store that cannot be reached or is going away. Each is retried with backoff; if a COMMIT was lost
# in flight, the retry finds its effects already stored, which every writer of alcance tolerates.
TRANSIENT_PG_ERRORS: tuple[type[BaseException], ...] = (
    # SQLSTATE class 08, connection exception (also a connection asyncpg found closed).
    asyncpg.PostgresConnectionError,
    # SQLSTATE class 57, operator intervention: admin or crash shutdown (a restart, a failover,
    # pg_terminate_backend), "cannot connect now" while the server starts, a cancelled statement.
    asyncpg.exceptions.OperatorInterventionError,
    # Client side of a session cut mid-operation: asyncpg refuses the connection's protocol state,
    # and a fresh connection from the pool works.
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    # The socket: refused, reset, unreachable; and a connect or command timeout.
    OSError,
    TimeoutError,
)

# SQLSTATE 40001 and 40P01: PostgreSQL chose this transaction as the victim of a serialisation
# conflict or a lock cycle. Every transaction of alcance is idempotent, so running it again is exact.
RETRY_TRANSACTION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
)

# Any failure that comes from PostgreSQL or the way to it, retryable or not: for work that must never
# stop its caller (a health report, a readiness probe), which logs it and goes on.
STORE_ERRORS: tuple[type[BaseException], ...] = (asyncpg.PostgresError, *TRANSIENT_PG_ERRORS)


def classify(exc: BaseException) -> Failure:
    """What `exc`, raised by asyncpg, aiokafka or a socket, means for the operation that raised it."""
    if isinstance(exc, RETRY_TRANSACTION_ERRORS):
        return Failure.RETRY_TRANSACTION
    if isinstance(exc, KafkaError):
        # A send that timed out waiting for the broker is not flagged retriable by aiokafka, but the
        # record can be sent again: event ids make a second copy harmless.
        if exc.retriable or isinstance(exc, KafkaTimeoutError):
            return Failure.TRANSIENT
        return Failure.FATAL
    if isinstance(exc, TRANSIENT_PG_ERRORS):
        return Failure.TRANSIENT
    return Failure.FATAL


def is_retryable(exc: BaseException) -> bool:
    """Whether trying the failed operation again may succeed (transient, or a transaction to rerun)."""
    return classify(exc) is not Failure.FATAL


def is_transaction_conflict(exc: BaseException) -> bool:
    """Whether PostgreSQL rolled the transaction back to break a conflict (rerun it at once)."""
    return classify(exc) is Failure.RETRY_TRANSACTION
