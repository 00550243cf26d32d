"""The judge client's gate under cancellation: the root cause of `rlpt judge-eval` hanging after its server
died (Python 3.11 left an asyncio.Condition's lock held by an orphaned, cancelled wait)."""

import asyncio

import pytest

from rlpt_verl.llm_client import LLMSettings, _Clock, _Gate


def gate(concurrency: int = 1) -> _Gate:
    return _Gate(
        LLMSettings(
            base_url="http://127.0.0.1:9/v1", model="m", concurrency=concurrency, initial_concurrency=concurrency
        )
    )


async def _cancel_storm() -> float:
    g = gate(1)
    assert await g.enter(_Clock(5.0)) is False  # the one slot is taken
    waiters = [asyncio.ensure_future(g.enter(_Clock(5.0))) for _ in range(20)]
    await asyncio.sleep(0.05)
    for _ in range(3):  # cancelled again while handling the first cancellation, as shutdown does
        for w in waiters:
            w.cancel()
        await asyncio.sleep(0)
    done, pending = await asyncio.wait(waiters, timeout=3)
    assert not pending and all(w.cancelled() for w in waiters)
    # the gate still works: the slot is given back and the next request gets it at once
    await asyncio.wait_for(g.leave(False, 0.1, None), 1)
    t0 = asyncio.get_running_loop().time()
    assert await asyncio.wait_for(g.enter(_Clock(5.0)), 2) is False
    assert g.in_flight == 1 and not g._waiters
    return asyncio.get_running_loop().time() - t0


@pytest.mark.timeout(60)  # the old gate hung here, in asyncio.run's own shutdown
def test_gate_survives_repeated_cancellation():
    assert asyncio.run(asyncio.wait_for(_cancel_storm(), 20)) < 0.5


async def _wake_on_leave() -> float:
    g = gate(1)
    await g.enter(_Clock(5.0))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    waiter = asyncio.ensure_future(g.enter(_Clock(5.0)))
    await asyncio.sleep(0.01)
    assert not waiter.done()  # no free slot: it waits
    await g.leave(False, 0.1, None)
    await asyncio.wait_for(waiter, 2)
    return loop.time() - t0


def test_waiter_is_woken_by_leave_not_by_its_poll():
    assert asyncio.run(_wake_on_leave()) < 0.5  # the poll interval is 1 s: a wake-up came first
