"""The Kafka requests aiokafka's admin client lacks: CreateAcls in batches and SCRAM credential upserts.

aiokafka 0.14 carries the CreateAcls structures (one ACL per request in its wrapper) and none for
AlterUserScramCredentials (KIP-554); both are sent here through `AIOKafkaClient.send`, the same path its
admin client takes. Kafka 4.x answers CreateAcls v1 and AlterUserScramCredentials v0.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.admin import CreateAclsRequest_v1, DescribeAclsRequest
from aiokafka.protocol.api import Request, RequestStruct, Response

from infra.kafka import client_kwargs
from infra.roles import KafkaPrincipal, acl_rules
from infra.settings import KafkaSettings

if TYPE_CHECKING:
    from schemas.topics import TopicCatalogue

from aiokafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

# Kafka's protocol codes (org.apache.kafka.common.acl / resource).
RESOURCE_TOPIC, RESOURCE_GROUP, RESOURCE_CLUSTER = 2, 3, 4
PATTERN_LITERAL, PATTERN_PREFIXED = 3, 4
OPERATION = {"READ": 3, "WRITE": 4, "CREATE": 5, "DESCRIBE": 8, "ALTER": 7}
ALLOW = 3
ANY = 1
SCRAM_SHA_512 = 2
SCRAM_ITERATIONS = 8192


Send: TypeAlias = Callable[[Request[Any]], Awaitable[Any]]
"""Sends one request to a node and returns its response (an aiokafka connection's or client's `send`)."""


def client_sender(client: AIOKafkaClient) -> Send:
    """`Send` through `client`, to any node of the cluster (it forwards to the controller)."""
    return lambda request: client.send(client.get_random_node(), request)


async def ensure_acls(kafka: KafkaSettings, catalogue: TopicCatalogue) -> None:
    """Create the ACLs every principal needs on `catalogue`'s topics (`infra.roles`), as `kafka`'s user.

    Does nothing unless `kafka.manage_acls`; creating an ACL that exists changes nothing, so every
    starter may run it.

    Raises:
        KafkaError: when the cluster refuses (no authorizer, or the user may not alter ACLs).
    """
    if not kafka.manage_acls:
        return
    bindings = [
        AclBinding(
            principal=f"User:{_username(kafka, rule.principal)}",
            resource_type=RESOURCE_TOPIC if rule.resource == "topic" else RESOURCE_GROUP,
            resource_name=rule.name,
            operation=rule.operation,
        )
        for rule in acl_rules(catalogue)
    ]
    client = AIOKafkaClient(**client_kwargs(kafka))
    await client.bootstrap()
    try:
        await create_acls(client_sender(client), bindings)
        await _until_enforced(client_sender(client), bindings)
    finally:
        await client.close()


async def _until_enforced(send: Send, bindings: list[AclBinding], timeout_s: float = 30.0) -> None:
    """Wait until the broker describes every binding.

    Its authorizer learns of new ACLs from the metadata log a moment after the controller committed
    them; a client right after would be refused.
    """
    wanted: dict[tuple[int, str], set[tuple[str, int]]] = {}
    for rule in bindings:
        wanted.setdefault((rule.resource_type, rule.resource_name), set()).add(
            (rule.principal, OPERATION[rule.operation])
        )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while wanted:
        resources = list(wanted)
        responses: list[Any] = await asyncio.gather(
            *(
                send(DescribeAclsRequest(kind, name, PATTERN_LITERAL, None, None, ANY, ANY))
                for kind, name in resources
            )
        )
        for resource, response in zip(resources, responses, strict=True):
            described = {
                (principal, operation)
                for _type, _name, *_pattern, acls in response.resources
                for principal, _host, operation, _permission in acls
            }
            if wanted[resource] <= described:
                del wanted[resource]
        if wanted:
            if loop.time() >= deadline:
                raise KafkaError(f"ACLs not enforced after {timeout_s:.0f} s on {sorted(wanted)}")
            await asyncio.sleep(0.05)


def _username(kafka: KafkaSettings, principal: KafkaPrincipal) -> str:
    login = kafka.logins.get(principal.key)
    return principal.username if login is None else login.username


@dataclass(frozen=True)
class AclBinding:
    """One ALLOW rule: `principal` (`User:<name>`) may do `operation` on a resource."""

    principal: str
    resource_type: int
    resource_name: str
    operation: str
    pattern_type: int = PATTERN_LITERAL


class _CreateAcls(Request[CreateAclsRequest_v1]):  # type: ignore[misc]  # aiokafka is untyped here
    API_KEY = 30

    def __init__(self, bindings: list[AclBinding]) -> None:
        self._bindings = bindings

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class(
            [
                (rule.resource_type, rule.resource_name, rule.pattern_type, rule.principal, "*", op, ALLOW)
                for rule in self._bindings
                for op in [OPERATION[rule.operation]]
            ]
        )


async def create_acls(send: Send, bindings: list[AclBinding]) -> None:
    """Create `bindings` in one request (creating an existing ACL again is a no-op).

    Raises:
        KafkaError: with the cluster's reason when it refuses one (e.g. no authorizer configured).
    """
    if not bindings:
        return
    response: Any = await send(_CreateAcls(bindings))
    for error_code, error_message in response.creation_responses:
        if error_code != 0:
            reason = error_message or for_code(error_code).__name__
            raise KafkaError(f"the Kafka cluster refused to create an ACL: {reason}")


class _AlterScramResponse(Response):  # type: ignore[misc]  # aiokafka is untyped here
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _AlterScramStruct(RequestStruct):  # type: ignore[misc]  # aiokafka is untyped here
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = _AlterScramResponse
    SCHEMA = Schema(
        (
            "deletions",
            CompactArray(("name", CompactString("utf-8")), ("mechanism", Int8), ("tags", TaggedFields)),
        ),
        (
            "upsertions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


_Upsertion: TypeAlias = tuple[str, int, int, bytes, bytes, dict[int, bytes]]


class _AlterScram(Request[_AlterScramStruct]):  # type: ignore[misc]  # aiokafka is untyped here
    API_KEY = 51

    def __init__(self, upsertions: list[_Upsertion]) -> None:
        self._upsertions = upsertions

    def build(self, request_struct_class: type[_AlterScramStruct]) -> _AlterScramStruct:
        return request_struct_class([], self._upsertions, {})


def _salted(password: str, salt: bytes, iterations: int) -> bytes:
    # SCRAM's Hi() is PBKDF2 with HMAC of the mechanism's hash (RFC 5802); the broker keeps only keys
    # derived from it.
    return hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)


async def upsert_scram_users(send: Send, passwords: dict[str, str]) -> None:
    """Create or reset SCRAM-SHA-512 users (name -> password) through `send`.

    Raises:
        KafkaError: with the cluster's reason when it refuses one.
    """
    upsertions: list[_Upsertion] = []
    for name, password in sorted(passwords.items()):
        salt = secrets.token_bytes(32)
        upsertions.append(
            (name, SCRAM_SHA_512, SCRAM_ITERATIONS, salt, _salted(password, salt, SCRAM_ITERATIONS), {})
        )
    response: Any = await send(_AlterScram(upsertions))
    for user, error_code, error_message, _tags in response.results:
        if error_code != 0:
            reason = error_message or for_code(error_code).__name__
            raise KafkaError(f"the Kafka cluster refused SCRAM credentials for {user}: {reason}")
