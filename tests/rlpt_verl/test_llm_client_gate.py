"""The judge client's gate under cancellation: the root cause of `rlpt judge-eval` hanging after its server
died (Python 3.11 left an asyncio.Condition's lock held by an orphaned, cancelled wait)."""

import asyncio

import pytest

from rlpt_verl.llm_gate import Clock, Gate
from rlpt_verl.llm_settings import LLMSettings


def gate(concurrency: int = 1) -> Gate:
    return Gate(
        LLMSettings(
            base_url="http://127.0.0.1:9/v1", model="m", concurrency=concurrency, initial_concurrency=concurrency
        )
    )


async def _cancel_storm() -> float:
    g = gate(1)
    assert await g.enter(Clock(5.0)) is False  # the one slot is taken
    waiters = [asyncio.ensure_future(g.enter(Clock(5.0))) for _ in range(20)]
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
    assert await asyncio.wait_for(g.enter(Clock(5.0)), 2) is False
    assert g.in_flight == 1 and not g._waiters
    return asyncio.get_running_loop().time() - t0


@pytest.mark.timeout(60)  # the old gate hung here, in asyncio.run's own shutdown
def test_gate_survives_repeated_cancellation():
    assert asyncio.run(asyncio.wait_for(_cancel_storm(), 20)) < 0.5


async def _wake_on_leave() -> float:
    g = gate(1)
    await g.enter(Clock(5.0))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    waiter = asyncio.ensure_future(g.enter(Clock(5.0)))
    await asyncio.sleep(0.01)
    assert not waiter.done()  # no free slot: it waits
    await g.leave(False, 0.1, None)
    await asyncio.wait_for(waiter, 2)
    return loop.time() - t0


def test_waiter_is_woken_by_leave_not_by_its_poll():
    assert asyncio.run(_wake_on_leave()) < 0.5  # the poll interval is 1 s: a wake-up came first


async def _wake_one_in_order() -> tuple[int, list[int]]:
    g = gate(1)
    await g.enter(Clock(30.0))
    order: list[int] = []

    async def waiter(i: int) -> None:
        await g.enter(Clock(30.0))
        order.append(i)

    tasks = [asyncio.ensure_future(waiter(i)) for i in range(40)]
    await asyncio.sleep(0.05)
    assert len(g._waiters) == 40
    await g.leave(False, 0.1, None)  # one slot freed: one waiter woken, not all 40
    woken = sum(f.done() for f in g._waiters)
    for _ in range(5):  # let each woken waiter take its slot and give it back, in turn
        await asyncio.sleep(0.01)
        await g.leave(False, 0.1, None)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return woken, order


def test_leave_wakes_only_the_oldest_waiter_that_can_enter():
    woken, order = asyncio.run(_wake_one_in_order())
    assert woken == 1
    assert order[:5] == [0, 1, 2, 3, 4]  # first come, first served


def test_a_success_returns_its_verdict_while_the_window_recovers():
    """After an outage half the window is failures: the next failure raises, but a success never does."""
    from rlpt_verl.llm_client import LLMClient, LLMDownError, LLMFormatError

    c = LLMClient(LLMSettings(base_url="http://127.0.0.1:9/v1", model="m", down_window=10, down_min_calls=4))
    for _ in range(3):
        c._record("timeout")
    with pytest.raises(LLMDownError, match="looks down: 4 of the last 4 calls failed"):
        c._record("timeout")
    for _ in range(4):
        c._record("ok")  # 4 of 8 still failures: no raise for a success
    with pytest.raises(LLMDownError, match="5 of the last 9"):
        c._record("connection")
    # unparsable replies have their own limit (0.25 of the window), apart from transport failures
    f = LLMClient(LLMSettings(base_url="http://127.0.0.1:9/v1", model="m", down_window=8, down_min_calls=8))
    for outcome in ["ok"] * 6 + ["unparsable"]:
        f._record(outcome)
    f._record("unparsable")  # 2 of 8 = 0.25: at the limit, not over it
    with pytest.raises(LLMFormatError, match="ignores the reply format: 3 of the last 8 replies"):
        f._record("unparsable")
