"""Several external judge replicas without losing the prefix cache: route by the reference, fail over when down.

The n samples of one GRPO prompt share a reference, and a judge prompt that starts with it shares a prefix
the server can cache (vLLM's prefix caching). A least-loaded router scatters the group over replicas and
each recomputes that prefix. Here every reference has a fixed order of replicas (rendezvous hashing: each
replica's score is a hash of (replica URL, reference), highest first), so a group stays on one replica,
adding or removing a replica moves only the references it gains or loses, and when the first replica is
down or its call fails the next one in that order is asked. A replica that failed is skipped for
``cooldown_s`` (then tried again), and so is one whose breaker is open; a request already sent to a replica
that dies fails over after that client's retries (``judge_max_retries``, ``judge_retry_budget_s``). Only
when every replica fails does the failure reach the manager.

Each replica has its own :class:`~rlpt_verl.llm_client.LLMClient`: its own connection pool, adaptive
concurrency, breaker, down window and cache.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from rlpt_verl.llm_client import LLMClient, LLMDownError, LLMSettings, Verdict

__all__ = ["judge_urls", "replica_order", "JudgeReplicas"]

COOLDOWN_S = 30.0


def judge_urls(value: Any) -> list[str]:
    """The judge URLs of a ``judge_base_url`` setting: one URL, a comma-separated string, or a list.

    >>> judge_urls("http://a:8000/v1"), judge_urls("http://a:1/v1, http://b:2/v1"), judge_urls(["u", " v "])
    (['http://a:8000/v1'], ['http://a:1/v1', 'http://b:2/v1'], ['u', 'v'])
    >>> judge_urls(None), judge_urls("")
    ([], [])
    """
    if value is None:
        return []
    parts = value if isinstance(value, list | tuple) else str(value).split(",")
    return [str(p).strip() for p in parts if str(p).strip()]


def replica_order(reference: str, urls: list[str]) -> list[int]:
    """Indices of ``urls`` in the order a reference tries them (rendezvous hashing): the same order for the
    same reference in every process, and removing a replica changes no other replica's place.

    >>> urls = ["http://a/v1", "http://b/v1", "http://c/v1"]
    >>> replica_order("ref 1", urls) == replica_order("ref 1", list(urls))
    True
    >>> order = replica_order("ref 1", urls)
    >>> [urls[i] for i in replica_order("ref 1", [u for u in urls if u != urls[order[0]]])] == [
    ...     urls[i] for i in order[1:]]
    True
    """

    def score(url: str) -> int:
        return int.from_bytes(hashlib.blake2b(f"{url}\x00{reference}".encode(), digest_size=8).digest(), "big")

    return sorted(range(len(urls)), key=lambda i: score(urls[i]), reverse=True)


class JudgeReplicas:
    """The :class:`LLMClient` interface the `rlpt` manager uses (``ask_cached``, ``check``, ``settings``,
    ``last_error``, ``aclose``) over one client per replica URL."""

    _instances: dict[str, JudgeReplicas] = {}

    @classmethod
    def shared(cls, settings: LLMSettings, cooldown_s: float = COOLDOWN_S) -> JudgeReplicas | LLMClient:
        """The process's client for ``settings``: a plain :class:`LLMClient` for one URL, else the replicas."""
        if not settings.replicas:
            return LLMClient.shared(settings)
        key = repr((settings, cooldown_s))
        if key not in cls._instances:
            cls._instances[key] = cls(settings, cooldown_s)
        return cls._instances[key]

    @classmethod
    def forget_shared(cls) -> None:
        """Drop the shared replica sets and every shared client (see :meth:`LLMClient.forget_shared`)."""
        cls._instances.clear()
        LLMClient.forget_shared()

    def __init__(self, settings: LLMSettings, cooldown_s: float = COOLDOWN_S):
        self.settings = settings
        self.urls = [settings.base_url, *settings.replicas]
        self.clients = [LLMClient(replace(settings, base_url=u, replicas=())) for u in self.urls]
        self.down_until = [0.0] * len(self.urls)
        self.cooldown_s = cooldown_s
        self._last_error = ""
        self.stats = {"failovers": 0}

    @property
    def last_error(self) -> str:
        return self._last_error or next((c.last_error for c in self.clients if c.last_error), "")

    async def check(self, attempts: int = 2, timeout_s: float | None = None) -> None:
        """Every replica answers (the start-up preflight): a replica that does not fails in one line naming it."""
        for client in self.clients:
            await client.check(attempts, timeout_s)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()

    def _failing(self, i: int, now: float) -> bool:
        """Replica ``i`` failed within the cooldown, or its breaker is open right now (a call is failing)."""
        gate = getattr(self.clients[i], "_gate", None)
        return self.down_until[i] > now or bool(gate is not None and gate.open)

    def order(self, reference: str) -> list[int]:
        """The replicas to try for ``reference``: its rendezvous order, the failing ones last."""
        now = time.monotonic()
        order = replica_order(reference, self.urls)
        return [i for i in order if not self._failing(i, now)] + [i for i in order if self._failing(i, now)]

    async def ask_cached(self, key: tuple[str, ...], prompt: str, parse: Callable[[Any], Any]) -> Verdict:
        """The verdict of the reference's first replica that gives one; ``Verdict.replica`` names it."""
        failure: BaseException | None = None
        verdict = None
        for n, i in enumerate(self.order(key[0])):
            if n:
                self.stats["failovers"] += 1
            try:
                verdict = await self.clients[i].ask_cached(key, prompt, parse)
            except LLMDownError as e:  # this replica looks down: the next one takes its references
                self.down_until[i] = time.monotonic() + self.cooldown_s
                failure, self._last_error = e, str(e)
                continue
            verdict.replica = i
            if verdict.error is None or verdict.error == "context_length":  # a verdict, or the same on any replica
                return verdict
            self.down_until[i] = time.monotonic() + self.cooldown_s
            self._last_error = f"{self.clients[i].settings.endpoint}: {self.clients[i].last_error}"
        if verdict is not None:
            return verdict  # no replica gave a verdict: the last failure, as one client would report it
        assert failure is not None
        raise failure
