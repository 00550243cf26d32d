"""Async client for an OpenAI-compatible ``/v1/chat/completions`` judge (vLLM, SGLang, transformers serve,
llama.cpp), shared by every reward-manager instance in a process.

One aiohttp connection pool and one concurrency limit per worker process, so the total load on the judge
is ``reward.num_workers`` x ``judge_concurrency``. Identical (reference, prediction) pairs in flight or
recently judged in this process share one call (bounded LRU). Transient failures (timeouts, connection
errors, 5xx, 429) are retried with exponential backoff and full jitter within a time budget; 4xx fail fast.
A rolling window of call outcomes turns a dead judge into a clear error instead of all-zero rewards.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from collections import OrderedDict, deque
from dataclasses import asdict, dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


class JudgeConfigError(ValueError):
    """The judge settings are wrong (missing URL, bad key, unknown model): fix the config."""


class JudgeDownError(RuntimeError):
    """Too many recent judge calls failed: stop instead of feeding GRPO all-zero rewards."""


@dataclass(frozen=True)
class JudgeSettings:
    base_url: str
    model: str
    api_key_env: str | None = None
    concurrency: int = 32
    timeout_s: float = 60.0
    max_retries: int = 4
    retry_budget_s: float = 120.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    max_tokens: int = 8
    chat_template_kwargs: dict = field(default_factory=dict)
    cache_size: int = 4096
    down_window: int = 64
    down_fraction: float = 0.5
    down_min_calls: int = 16

    @property
    def endpoint(self) -> str:
        url = self.base_url.rstrip("/")
        if "://" not in url:  # verl passes reward_router_address as "ip:port"
            url = "http://" + url
        if url.endswith("/chat/completions"):
            return url
        return url + ("/chat/completions" if url.endswith("/v1") else "/v1/chat/completions")

    def validate(self) -> None:
        problems = []
        if not self.base_url:
            problems.append("judge_base_url is empty (set +reward.reward_kwargs.judge_base_url=http://HOST:PORT/v1)")
        if not self.model:
            problems.append("judge_model is empty (the served model name; for vLLM the path it was started with)")
        if self.api_key_env and not os.environ.get(self.api_key_env):
            problems.append(f"judge_api_key_env names {self.api_key_env!r}, which is not set in the environment")
        for name in ("concurrency", "timeout_s", "max_tokens", "cache_size", "down_window", "retry_budget_s"):
            if not getattr(self, name) > 0:
                problems.append(f"judge_{name} must be > 0, got {getattr(self, name)!r}")
        if self.max_retries < 0:
            problems.append(f"judge_max_retries must be >= 0, got {self.max_retries}")
        if not 0 < self.down_fraction <= 1:
            problems.append(f"judge_down_fraction must be in (0, 1], got {self.down_fraction}")
        if not isinstance(self.chat_template_kwargs, dict):
            problems.append("judge_chat_template_kwargs must be a mapping, e.g. {enable_thinking: false}")
        if problems:
            raise JudgeConfigError("invalid RLPT judge settings: " + "; ".join(problems))


@dataclass
class Verdict:
    score: int | None  # 0/1, or None when the judge's reply never parsed
    error: bool = False  # the call failed after retries
    parse_failure: bool = False
    calls: int = 0  # HTTP requests actually sent for this sample
    cache_hit: bool = False


class JudgeClient:
    """Per-process judge client; use :meth:`shared` to get the process's instance for some settings."""

    _instances: dict[str, JudgeClient] = {}

    @classmethod
    def shared(cls, settings: JudgeSettings) -> JudgeClient:
        key = json.dumps(asdict(settings), sort_keys=True)
        if key not in cls._instances:
            cls._instances[key] = cls(settings)
        return cls._instances[key]

    def __init__(self, settings: JudgeSettings):
        settings.validate()
        self.settings = settings
        self._session = None
        self._session_loop = None
        self._sem: asyncio.Semaphore | None = None
        self._cache: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._inflight: dict[tuple[str, str], asyncio.Future] = {}
        self._outcomes: deque[bool] = deque(maxlen=settings.down_window)
        self.stats = {"requests": 0, "retries": 0, "failures": 0}

    # -- plumbing ---------------------------------------------------------------------------
    def _ensure_session(self):
        import aiohttp

        loop = asyncio.get_running_loop()
        if self._session is None or self._session_loop is not loop or self._session.closed:
            s = self.settings
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=s.timeout_s),
                connector=aiohttp.TCPConnector(limit=s.concurrency, force_close=False),
            )
            self._session_loop = loop
            self._sem = asyncio.Semaphore(s.concurrency)
        return self._session

    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.settings.api_key_env:
            headers["Authorization"] = f"Bearer {os.environ[self.settings.api_key_env]}"
        return headers

    def _payload(self, prompt: str) -> dict[str, Any]:
        s = self.settings
        body: dict[str, Any] = {
            "model": s.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0.0,
            "max_tokens": s.max_tokens,
        }
        if s.chat_template_kwargs:
            body["chat_template_kwargs"] = dict(s.chat_template_kwargs)
        return body

    def _record(self, ok: bool) -> None:
        self._outcomes.append(ok)
        s = self.settings
        failed = self._outcomes.count(False)
        if len(self._outcomes) >= s.down_min_calls and failed > s.down_fraction * len(self._outcomes):
            raise JudgeDownError(
                f"RLPT judge at {self.settings.endpoint} looks down: {failed} of the last {len(self._outcomes)} "
                f"judge calls failed after retries (timeouts, connection errors or 5xx). Check the judge server; "
                f"stopping rather than training on all-zero rewards"
            )

    async def _post(self, prompt: str) -> tuple[str | None, int, bool]:
        """One judged completion with retries: (reply text or None, requests sent, failed)."""
        import aiohttp

        s = self.settings
        session = self._ensure_session()
        deadline = time.monotonic() + s.retry_budget_s
        sent = 0
        for attempt in range(s.max_retries + 1):
            sent += 1
            self.stats["requests"] += 1
            try:
                async with self._sem:
                    async with session.post(s.endpoint, json=self._payload(prompt), headers=self._headers()) as resp:
                        text = await resp.text()
                        if resp.status == 429 or resp.status >= 500:
                            raise _Transient(f"HTTP {resp.status}: {text[:200]}")
                        if resp.status >= 400:
                            raise JudgeConfigError(
                                f"RLPT judge at {s.endpoint} rejected the request (HTTP {resp.status}): {text[:300]}. "
                                f"Check judge_model ({s.model!r}), the API key and the URL"
                            )
                        data = json.loads(text)
                        return data["choices"][0]["message"].get("content") or "", sent, False
            except JudgeConfigError:
                raise
            except (asyncio.TimeoutError, aiohttp.ClientError, _Transient, ConnectionError, OSError) as e:
                last = f"{type(e).__name__}: {e}"
            except (ValueError, KeyError, IndexError, TypeError) as e:  # 200 with a body that is not a completion
                last = f"malformed reply: {type(e).__name__}: {e}"
            delay = random.uniform(0, min(s.backoff_max_s, s.backoff_base_s * 2**attempt))
            if attempt == s.max_retries or time.monotonic() + delay > deadline:
                break
            self.stats["retries"] += 1
            logger.warning("judge call failed (%s); retry %d in %.2fs", last, attempt + 1, delay)
            await asyncio.sleep(delay)
        self.stats["failures"] += 1
        logger.warning("judge call failed after %d attempts: %s", sent, last)
        return None, sent, True

    async def aclose(self) -> None:
        """Close the connection pool (call from the loop that used it; Ray workers simply exit)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    # -- API -----------------------------------------------------------------------------------
    async def complete(self, prompt: str) -> tuple[str | None, int]:
        """(reply text or None after retries, requests sent): the plain completion other tools use."""
        reply, sent, failed = await self._post(prompt)
        self._record(not failed)
        return reply, sent

    async def judge(self, key: tuple[str, str], prompt: str) -> Verdict:
        """Verdict for ``prompt``; ``key`` identifies equivalent requests for dedupe and caching."""
        from .prefix_judge import parse_verdict

        if key in self._cache:
            self._cache.move_to_end(key)
            return Verdict(score=self._cache[key], cache_hit=True)
        if key in self._inflight:
            score, error, parse_failure = await asyncio.shield(self._inflight[key])
            return Verdict(score=score, cache_hit=True, error=error, parse_failure=parse_failure)
        future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        verdict = Verdict(score=None)
        try:
            for _ in range(2):  # an unparsable reply is asked once more, then scored 0
                reply, sent, failed = await self._post(prompt)
                verdict.calls += sent
                self._record(not failed)
                if failed:
                    verdict.error = True
                    break
                verdict.score = parse_verdict(reply)
                if verdict.score is not None:
                    break
            verdict.parse_failure = verdict.score is None and not verdict.error
            if verdict.score is not None:  # failures are not cached: the next identical sample tries again
                self._cache[key] = verdict.score
                if len(self._cache) > self.settings.cache_size:
                    self._cache.popitem(last=False)
            future.set_result((verdict.score, verdict.error, verdict.parse_failure))
            return verdict
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # mark retrieved: waiters get it, nobody gets "never retrieved" noise
            raise
        finally:
            self._inflight.pop(key, None)


class _Transient(Exception):
    pass
