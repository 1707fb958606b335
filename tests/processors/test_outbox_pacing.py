"""The relay's pacing: short rounds at the poll interval, long rounds within their share of the time."""

from __future__ import annotations

import pytest

from infra.settings import Settings
from processors.outbox import OutboxRelay


def relay(settings: Settings, *, interval_ms: int, share: float) -> OutboxRelay:
    tuned = settings.model_copy(
        update={
            "processor": settings.processor.model_copy(
                update={"outbox_poll_interval_ms": interval_ms, "relay_max_busy_share": share}
            )
        }
    )
    return OutboxRelay(tuned, pool=None)  # type: ignore[arg-type]  # pacing needs no store


@pytest.mark.parametrize(
    ("round_s", "pause_s"),
    [(0.0, 1.0), (0.2, 1.0), (1.0, 3.0), (2.0, 6.0)],
)
def test_the_relay_pauses_at_least_the_interval_and_keeps_to_its_busy_share(
    local_stack: Settings, round_s: float, pause_s: float
) -> None:
    paced = relay(local_stack, interval_ms=1_000, share=0.25)
    assert paced.pause_after(round_s) == pytest.approx(pause_s)
    busy = round_s / (round_s + paced.pause_after(round_s))
    assert busy <= 0.25 + 1e-9


def test_a_relay_allowed_all_the_time_waits_only_the_interval(local_stack: Settings) -> None:
    assert relay(local_stack, interval_ms=200, share=1.0).pause_after(5.0) == pytest.approx(0.2)
