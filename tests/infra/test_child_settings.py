"""Extra processor processes get their settings over a pipe: no secret in their environment, and they work."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr

from alcance.app import _processor_workers
from infra.settings import IntakeSettings, PseudonymSettings, Settings, SourceConfig
from schemas.cloudevents import encode
from schemas.topics import TopicCatalogue
from tests.processors.support import produce
from tests.processors.test_runtime import wait_committed
from tests.schemas.factories import make_cost_recorded

CANARY = "canary-secret-5f0c1e9a7b3d42c8a6e1"


def proc_file(pid: int, name: str) -> bytes:
    return Path(f"/proc/{pid}/{name}").read_bytes()


async def test_child_processors_hold_no_secret_in_their_environment_and_still_work(
    settings: Settings, pg_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A secret set in the parent's environment must not travel either.
    monkeypatch.setenv("ALCANCE_PSEUDONYM__ORG_KEY", CANARY + "-env")
    secret = SecretStr(CANARY)
    with_secrets = settings.model_copy(
        update={
            "pseudonym": PseudonymSettings(person_key=secret, org_key=secret),
            "intake": IntakeSettings(token=secret),
            "sources": [
                SourceConfig(name="lrs", kind="xapi", endpoint="http://lrs.invalid/", password=secret)
            ],
        }
    )
    async with _processor_workers(with_secrets, 2) as workers:
        assert len(workers) == 2
        for worker in workers:
            for view in ("environ", "cmdline"):
                assert CANARY.encode() not in proc_file(worker.pid, view), view
            assert b"ALCANCE_" not in proc_file(worker.pid, "environ")
        # Only the children consume this test's topics: a committed record proves they work.
        events = [make_cost_recorded(record_identity=f"c-{i}", cost_id=f"cost-{i}") for i in range(6)]
        topic = TopicCatalogue.from_settings(settings).finance.name
        await produce(with_secrets, [(topic, encode(e)) for e in events])
        await wait_committed(pg_pool, len(events), timeout_s=60)
        assert await pg_pool.fetchval("SELECT count(*) FROM fact") == len(events)
        assert all(worker.returncode is None for worker in workers)
    assert all(worker.returncode is not None for worker in workers)
