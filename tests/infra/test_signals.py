"""A process stops on SIGTERM or SIGINT while inside `on_stop_signals`, and only then."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from infra.signals import on_stop_signals


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_stop_signal_calls_the_callback_and_the_handler_goes_on_exit(signum: int) -> None:
    stop = asyncio.Event()
    with on_stop_signals(stop.set):
        os.kill(os.getpid(), signum)
        await asyncio.wait_for(stop.wait(), 5)
    # Outside, the loop no longer handles it: removing it again reports there was none.
    assert not asyncio.get_running_loop().remove_signal_handler(signum)
