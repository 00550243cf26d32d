"""How :class:`rlpt_verl.llm_client.LLMClient` paces requests: adaptive concurrency, a circuit breaker that lets
one probe through while open, latency-aware timeouts and each request's retry budget (no I/O of its own).
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time

from .llm_settings import LLMSettings


class Failure(Exception):
    """One failed attempt: ``kind`` names the reason; ``transient`` ones are retried and open the breaker."""

    def __init__(self, kind: str, detail: str, transient: bool = True, retry_after: float | None = None):
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail, self.transient, self.retry_after = kind, detail, transient, retry_after


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date); None if absent or bad.

    >>> retry_after_s("3"), retry_after_s("soon"), retry_after_s(None)
    (3.0, None, None)
    >>> retry_after_s("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0)
    10.0
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


class Clock:
    """A request's retry budget: unset until the request first fails or waits on an open breaker."""

    def __init__(self, budget_s: float):
        self.budget_s = budget_s
        self.deadline: float | None = None

    def start(self, now: float) -> None:
        if self.deadline is None:
            self.deadline = now + self.budget_s

    def left(self, now: float) -> float:
        return self.budget_s if self.deadline is None else self.deadline - now


class Gate:
    """Adaptive concurrency limit plus a circuit breaker that lets one probe through while open."""

    def __init__(self, settings: LLMSettings):
        self.max = settings.concurrency
        self.limit = float(min(settings.concurrency, settings.initial_concurrency))
        self.in_flight = 0
        # Waiters park on plain futures, woken by leave(). No asyncio.Condition: on Python 3.11,
        # wait_for(cond.wait()) cancelled twice (a timeout, then the task itself) orphans the inner wait,
        # which re-acquires the lock and keeps it forever: every later enter() and leave() then hangs.
        # State changes here contain no await, so the event loop alone makes them atomic. A dict keeps the
        # waiters in arrival order: leave() wakes the oldest, only as many as can enter (not a stampede).
        self._waiters: dict[asyncio.Future, None] = {}
        self.open = False
        self.open_until = 0.0
        self.probing = False
        self.failures_in_row = 0
        self.timeouts_in_row = 0
        self.latency: float | None = None  # EWMA of successful request latency
        self.best: float | None = None
        self.s = settings

    def timeout(self) -> float:
        """At least ``timeout_s`` and 4x the recent latency, doubled per consecutive timeout: a server
        working through a backlog (of requests abandoned by earlier timeouts) gets the time to answer."""
        s = self.s
        base = max(s.timeout_s, 4 * self.latency) if self.latency else s.timeout_s
        return min(max(s.timeout_s, s.retry_budget_s), base * 2 ** min(self.timeouts_in_row, 10))

    async def enter(self, clock: Clock) -> bool:
        """Wait for a slot; True if this request is the breaker's probe. Raises TimeoutError when the
        request's retry budget runs out (it starts at its first failure or its first wait on the breaker;
        waiting for a free slot while all is well is free, however long the queue)."""
        while True:
            now = time.monotonic()
            if self.open:
                clock.start(now)
            if clock.deadline is not None and now >= clock.deadline:
                raise TimeoutError
            # re-check at least every second: a missed wake-up never waits for long
            wait = min(1.0, clock.deadline - now) if clock.deadline is not None else 1.0
            if self.open:
                if not self.probing and now >= self.open_until:
                    self.probing = True
                    self.in_flight += 1
                    return True
                if not self.probing:
                    wait = min(wait, self.open_until - now)
            elif self.in_flight < int(self.limit):
                self.in_flight += 1
                return False
            waiter = asyncio.get_running_loop().create_future()
            self._waiters[waiter] = None
            try:
                await asyncio.wait([waiter], timeout=max(0.001, wait))  # never cancels or wraps the future
            finally:
                self._waiters.pop(waiter, None)

    async def leave(self, probe: bool, latency: float | None, failure: Failure | None) -> None:
        s = self.s
        self.in_flight -= 1
        if probe:
            self.probing = False
        if failure is None or not failure.transient:
            if latency is not None:
                self.latency = latency if self.latency is None else 0.8 * self.latency + 0.2 * latency
                self.best = latency if self.best is None else min(self.best, latency)
            self.open, self.failures_in_row, self.timeouts_in_row = False, 0, 0
            if latency is not None and self.best is not None and latency > 3 * self.best + 0.5:
                self.limit = max(1.0, self.limit * 0.9)  # latency climbing: the server is queueing
            else:
                self.limit = min(float(self.max), self.limit + 1 / self.limit)
        else:
            self.limit = max(1.0, self.limit / 2)
            self.failures_in_row += 1
            self.timeouts_in_row = self.timeouts_in_row + 1 if failure.kind == "timeout" else 0
            backoff = random.uniform(0.5, 1.0) * min(s.backoff_max_s, s.backoff_base_s * 2**self.failures_in_row)
            wait = max(backoff, min(failure.retry_after or 0.0, s.retry_budget_s))
            self.open = True
            self.open_until = max(self.open_until, time.monotonic() + wait)
        self._wake()

    def _wake(self) -> None:
        """Wake the oldest waiters that can enter now: the free slots, or one (a would-be probe) while open.
        Waking every waiter on each completion cost 43 % with 1-2 k queued requests; a waiter that finds no
        slot anyway re-checks within a second, so a missed wake-up is never a hang."""
        free = 1 if self.open else int(self.limit) - self.in_flight
        for waiter in list(self._waiters):
            if free <= 0:
                break
            if not waiter.done():
                waiter.set_result(None)
                free -= 1
