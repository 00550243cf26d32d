"""Async client for an OpenAI-compatible ``/v1/chat/completions`` server (vLLM, SGLang, transformers serve,
llama.cpp), shared by every reward-manager instance in a process; also the quality rater's transport.

One aiohttp connection pool per worker process. What keeps a slow or recovering server usable:

- **Adaptive concurrency** (AIMD): start at ``initial_concurrency`` requests in flight, add about one per
  round of successes while latency stays near the best seen, halve on a timeout, 429 or 5xx, never more
  than ``concurrency``. A single-request server (``transformers serve``) is not flooded.
- **Circuit breaker**: after a failure every request waits; one probe goes out (after a jittered backoff, or
  the server's ``Retry-After``), and only its success releases the others. A server that resumes after a
  stall first drains what it already has, instead of a storm of retries that each time out again.
- **Latency-aware timeouts**: a request's timeout is at least ``timeout_s`` and at least 4x the recent
  latency; each consecutive timeout doubles it (bounded), so a loaded server gets the time it needs.
- Identical (reference, prediction) pairs in flight or recently judged share one call (bounded LRU).
- 4xx other than 429 fail fast with the server's message; a 400 about context length is reported as such.
- A rolling window of call outcomes turns a dead server (transport failures) into :class:`LLMDownError`
  and one that ignores the reply format (unparsable replies, their own limit) into :class:`LLMFormatError`,
  both naming the URL, instead of silent zeros. Only a failing call raises: a call that succeeds returns
  its reply even while the window still remembers an outage.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import random
import re
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


class LLMConfigError(ValueError):
    """The settings are wrong (missing URL, bad key, unknown model): fix the config."""


class LLMDownError(RuntimeError):
    """Too many recent calls failed or could not be parsed: stop instead of scoring with a dead server."""


class LLMFormatError(LLMDownError):
    """Too many recent replies had no parsable answer: the server answers, but not in the asked format."""


class LLMUnreachableError(RuntimeError):
    """The server did not answer a health probe (wrong URL, port or scheme, or the server is not up)."""


@dataclass(frozen=True)
class LLMSettings:
    base_url: str
    model: str
    api_key_env: str | None = None
    concurrency: int = 32  # the most requests in flight per process; the client starts lower and adapts
    initial_concurrency: int = 4
    timeout_s: float = 60.0  # the least a request is given; grows with observed latency
    max_retries: int = 4
    retry_budget_s: float = 120.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    max_tokens: int = 8
    chat_template_kwargs: dict = field(default_factory=dict)
    extra_body: dict = field(default_factory=dict)  # merged into every request (vLLM guided choice, seed, ...)
    cache_size: int = 4096
    down_window: int = 64
    down_fraction: float = 0.5
    down_min_calls: int = 16
    unparsable_fraction: float = 0.25  # share of unparsable replies in the window that stops the run
    # A server that stops answering mid-run (frozen, not refusing) after a long run of successes would need
    # a window's worth of slow failures before the fraction rule fires: with this set, a failure when the
    # last reply is older than stall_s also counts as down (eval sets it to its retry budget; None: off).
    stall_s: float | None = None
    replicas: tuple[str, ...] = ()  # more URLs of the same model (rlpt_verl.reward.judge_replicas routes over them)
    role: str = "LLM server"  # how messages name the server: "RLPT judge", "quality rater"
    setting_prefix: str = ""  # how messages name the settings: "judge_", "--quality-"

    @property
    def endpoint(self) -> str:
        url = self.base_url.rstrip("/")
        if "://" not in url:  # verl passes reward_router_address as "ip:port"
            url = "http://" + url
        if url.endswith("/chat/completions"):
            return url
        return url + ("/chat/completions" if url.endswith("/v1") else "/v1/chat/completions")

    def validate(self) -> None:
        p = self.setting_prefix
        problems = []
        if not self.base_url:
            problems.append(f"{p}base_url is empty (the server's URL, e.g. http://HOST:PORT/v1)")
        for url in (self.base_url, *self.replicas):
            if "://" in url and not url.startswith(("http://", "https://")):
                problems.append(f"{p}base_url {url!r} must start with http:// or https://")
        if not self.model:
            problems.append(f"{p}model is empty (the served model name; for vLLM the path it was started with)")
        if self.api_key_env and not os.environ.get(self.api_key_env):
            problems.append(f"{p}api_key_env names {self.api_key_env!r}, which is not set in the environment")
        for name in ("concurrency", "initial_concurrency", "timeout_s", "max_tokens", "cache_size", "down_window"):
            if not getattr(self, name) > 0:
                problems.append(f"{p}{name} must be > 0, got {getattr(self, name)!r}")
        if not self.retry_budget_s > 0:
            problems.append(f"{p}retry_budget_s must be > 0, got {self.retry_budget_s!r}")
        if self.max_retries < 0:
            problems.append(f"{p}max_retries must be >= 0, got {self.max_retries}")
        if self.stall_s is not None and not self.stall_s > 0:
            problems.append(f"{p}stall_s must be > 0 (or unset), got {self.stall_s!r}")
        for name in ("down_fraction", "unparsable_fraction"):
            if not 0 < getattr(self, name) <= 1:
                problems.append(f"{p}{name} must be in (0, 1], got {getattr(self, name)}")
        if not isinstance(self.chat_template_kwargs, dict):
            problems.append(f"{p}chat_template_kwargs must be a mapping, e.g. {{enable_thinking: false}}")
        if not isinstance(self.extra_body, dict):
            problems.append(f"{p}extra_body must be a mapping of request fields, e.g. {{seed: 0}}")
        if problems:
            raise LLMConfigError(f"invalid {self.role} settings: " + "; ".join(problems))


@dataclass
class Verdict:
    score: int | None  # 0/1, or None when there is no verdict
    error: str | None = None  # why the call failed after retries: timeout, connection, http_5xx, ...
    parse_failure: bool = False  # the server answered, twice, without a parsable verdict
    calls: int = 0  # HTTP requests actually sent for this sample
    cache_hit: bool = False  # served without a call of its own: the LRU cache, or an identical call in flight
    shared: bool = False  # of those, served by an identical call in flight (a duplicate in the same batch)
    prompt_tokens: int = 0  # the server's `usage` over this sample's successful requests
    completion_tokens: int = 0
    tokens_estimated: bool = False  # the server reported no `usage`: prompt chars / 4 and the reply's chars / 4
    replica: int = 0  # which judge URL gave it (index into base_url + replicas)


# A 400 that says the prompt does not fit the model (vLLM, SGLang, llama.cpp, OpenAI wordings).
_CONTEXT = re.compile(
    r"context length|context window|maximum context|max_model_len|max_position|too many tokens|prompt is too long"
    r"|exceeds? the (model|maximum)|longer than the (model|maximum model length)|maximum model length"
    r"|input is too long",
    re.I,
)


def _add_usage(total: dict, usage: dict | None, body: dict, reply: str) -> None:
    """Add one reply's token counts to ``total``: the server's ``usage``, or an estimate (4 characters per token,
    flagged ``estimated``) when it reports none.

    >>> t = {}; _add_usage(t, {"prompt_tokens": 30, "completion_tokens": 3}, {}, "x"); t
    {'prompt_tokens': 30, 'completion_tokens': 3}
    >>> t = {}; _add_usage(t, None, {"messages": [{"content": "a" * 40}]}, "Score: 1"); t
    {'estimated': True, 'prompt_tokens': 10, 'completion_tokens': 2}
    """
    prompt, completion = (usage or {}).get("prompt_tokens"), (usage or {}).get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        chars = sum(len(str(m.get("content", ""))) for m in body.get("messages", []) if isinstance(m, dict))
        prompt, completion = -(-chars // 4), -(-len(reply or "") // 4)
        total["estimated"] = True
    total["prompt_tokens"] = total.get("prompt_tokens", 0) + prompt
    total["completion_tokens"] = total.get("completion_tokens", 0) + completion


class _Failure(Exception):
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


class _Clock:
    """A request's retry budget: unset until the request first fails or waits on an open breaker."""

    def __init__(self, budget_s: float):
        self.budget_s = budget_s
        self.deadline: float | None = None

    def start(self, now: float) -> None:
        if self.deadline is None:
            self.deadline = now + self.budget_s

    def left(self, now: float) -> float:
        return self.budget_s if self.deadline is None else self.deadline - now


class _Gate:
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

    async def enter(self, clock: _Clock) -> bool:
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

    async def leave(self, probe: bool, latency: float | None, failure: _Failure | None) -> None:
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


class LLMClient:
    """Per-process client; use :meth:`shared` to get the process's instance for some settings."""

    _instances: dict[str, LLMClient] = {}

    @classmethod
    def shared(cls, settings: LLMSettings) -> LLMClient:
        key = json.dumps(asdict(settings), sort_keys=True)
        if key not in cls._instances:
            cls._instances[key] = cls(settings)
        return cls._instances[key]

    def __init__(self, settings: LLMSettings):
        settings.validate()
        self.settings = settings
        self._session = None
        self._session_loop = None
        self._gate: _Gate | None = None
        self._cache: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._inflight: dict[tuple[str, str], asyncio.Future] = {}
        self._outcomes: deque[str] = deque(maxlen=settings.down_window)  # "ok" or a failure kind
        self._last_error = ""
        self._last_reply = ""
        self._last_ok: float | None = None  # when a call last succeeded (the stall rule)
        self._last_usage: dict | None = None  # `usage` of the reply _attempt parsed last (read right after it)
        self.stats = {"requests": 0, "retries": 0, "failures": 0}

    @property
    def last_error(self) -> str:
        """The most recent failure's message ("" if none): for errors that name what went wrong."""
        return self._last_error

    # -- plumbing ---------------------------------------------------------------------------
    def _ensure_session(self):
        import aiohttp

        loop = asyncio.get_running_loop()
        if self._session is None or self._session_loop is not loop or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.settings.concurrency, force_close=False),
            )
            self._session_loop = loop
            self._gate = _Gate(self.settings)
        return self._session

    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.settings.api_key_env:
            headers["Authorization"] = f"Bearer {os.environ[self.settings.api_key_env]}"
        return headers

    def _payload(self, prompt: str, temperature: float = 0.0, max_tokens: int | None = None) -> dict[str, Any]:
        s = self.settings
        body: dict[str, Any] = {
            "model": s.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": temperature,
            "max_tokens": max_tokens or s.max_tokens,
        }
        if s.chat_template_kwargs:
            body["chat_template_kwargs"] = dict(s.chat_template_kwargs)
        body.update(s.extra_body)
        return body

    def _record(self, outcome: str) -> None:
        """One call's outcome ("ok", "unparsable" or a transport failure kind) in the rolling window.

        Raises only for a failing call: :class:`LLMDownError` when transport failures pass
        ``down_fraction`` of the window, :class:`LLMFormatError` when unparsable replies pass
        ``unparsable_fraction``. A success returns its verdict even while an outage is still in the window.
        """
        self._outcomes.append(outcome)
        now = time.monotonic()
        if outcome == "ok":
            self._last_ok = now
            return
        s = self.settings
        if outcome != "unparsable" and s.stall_s and self._last_ok is not None and now - self._last_ok > s.stall_s:
            raise LLMDownError(
                f"{s.role} at {s.endpoint} looks down: no reply for {now - self._last_ok:.0f} s while calls kept "
                f"failing (limit {s.stall_s:.0f} s); last error: {self._last_error}. Check the server; "
                "stopping rather than waiting on it"
            )
        if len(self._outcomes) < s.down_min_calls:
            return
        window = len(self._outcomes)
        if outcome == "unparsable":
            bad = sum(o == "unparsable" for o in self._outcomes)
            if bad > s.unparsable_fraction * window:
                raise LLMFormatError(
                    f"{s.role} at {s.endpoint} ignores the reply format: {bad} of the last {window} replies had no "
                    f"parsable answer (limit {s.setting_prefix}unparsable_fraction={s.unparsable_fraction}); last "
                    f"reply {self._last_reply[:80]!r}. Use a model that follows the format (or a constrained "
                    f"reply via {s.setting_prefix}extra_body); stopping rather than training on no verdicts"
                )
            return
        failed = [o for o in self._outcomes if o not in ("ok", "unparsable")]
        if len(failed) > s.down_fraction * window:
            kinds = ", ".join(f"{k} {n}" for k, n in Counter(failed).most_common())
            raise LLMDownError(
                f"{s.role} at {s.endpoint} looks down: {len(failed)} of the last {window} calls "
                f"failed ({kinds}); last error: {self._last_error}. Check the server "
                f"(and {s.setting_prefix}model={s.model!r}); stopping rather than scoring without it"
            )

    async def _attempt(self, session, body: dict, timeout: float) -> str:
        import aiohttp

        s = self.settings
        try:
            async with session.post(
                s.endpoint, json=body, headers=self._headers(), timeout=aiohttp.ClientTimeout(total=timeout)
            ) as resp:
                text = await resp.text()
                if resp.status == 429 or resp.status >= 500:
                    kind = "http_429" if resp.status == 429 else "http_5xx"
                    raise _Failure(
                        kind,
                        f"HTTP {resp.status}: {text[:200]}",
                        retry_after=retry_after_s(resp.headers.get("Retry-After")),
                    )
                if resp.status == 400 and _CONTEXT.search(text):
                    raise _Failure("context_length", f"HTTP 400: {text[:300]}", transient=False)
                if resp.status >= 400:
                    raise LLMConfigError(
                        f"{s.role} at {s.endpoint} rejected the request (HTTP {resp.status}): {text[:300]}. "
                        f"Check {s.setting_prefix}model ({s.model!r}), the API key and the URL"
                    )
                try:
                    body = json.loads(text)
                    self._last_usage = body.get("usage") if isinstance(body.get("usage"), dict) else None
                    return body["choices"][0]["message"].get("content") or ""
                except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
                    raise _Failure("malformed", f"{type(e).__name__}: {text[:200]}") from None
        except (asyncio.TimeoutError, TimeoutError):
            raise _Failure("timeout", f"no reply within {timeout:.1f}s") from None
        except (aiohttp.ClientError, ConnectionError, OSError) as e:
            raise _Failure("connection", f"{type(e).__name__}: {e}") from None

    async def _post(self, body: dict, usage: dict | None = None) -> tuple[str | None, int, str | None]:
        """One completion with retries: (reply text or None, requests sent, failure kind or None). With
        ``usage``, the reply's token counts are added to it (``prompt_tokens``, ``completion_tokens``), from the
        server's ``usage`` or, when it gives none, estimated at 4 characters per token (``estimated`` set)."""
        s = self.settings
        session = self._ensure_session()
        gate = self._gate
        clock = _Clock(s.retry_budget_s)
        sent, kind = 0, None
        while sent <= s.max_retries:
            try:
                probe = await gate.enter(clock)
            except TimeoutError:
                kind = kind or "breaker_open"
                self._last_error = self._last_error or "requests held back while the server kept failing"
                break
            sent += 1
            self.stats["requests"] += 1
            self.stats["retries"] += sent > 1
            t0 = time.monotonic()
            timeout = min(gate.timeout(), max(1.0, clock.left(t0)))
            try:
                reply = await self._attempt(session, body, timeout)
                if usage is not None:  # read before the next await: the event loop runs nothing in between
                    _add_usage(usage, self._last_usage, body, reply)
            except _Failure as f:
                clock.start(time.monotonic())
                await gate.leave(probe, None, f)
                kind, self._last_error = f.kind, f"{f}"
                if not f.transient:
                    break
                logger.warning("%s call failed (%s); attempt %d", s.role, f, sent)
                continue
            except BaseException:
                await gate.leave(probe, None, None)
                raise
            await gate.leave(probe, time.monotonic() - t0, None)
            return reply, sent, None
        self.stats["failures"] += 1
        logger.warning("%s call failed after %d attempts: %s", s.role, sent, self._last_error)
        return None, sent, kind

    async def aclose(self) -> None:
        """Close the connection pool (call from the loop that used it; Ray workers simply exit)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    # -- API -----------------------------------------------------------------------------------
    async def ask(
        self, prompt: str, parse: Callable[[str], Any], max_tokens: int | None = None, usage: dict | None = None
    ) -> tuple[Any, int, str | None]:
        """(parsed reply or None, requests sent, failure kind or None); asked once more, sampled, when the
        reply does not parse. Transport failures and unparsable replies count toward the down rule. Token counts
        of the replies are added to ``usage`` when given (see :meth:`_post`)."""
        calls, value = 0, None
        for temperature in (0.0, 0.7):  # a greedy reply that did not parse would only repeat itself
            reply, sent, kind = await self._post(self._payload(prompt, temperature, max_tokens), usage)
            calls += sent
            if kind is not None:
                self._record(kind)
                return None, calls, kind
            value = parse(reply)
            if value is not None:
                self._record("ok")
                return value, calls, None
            self._last_reply = reply or ""
        self._record("unparsable")
        return None, calls, "unparsable"

    async def complete(self, prompt: str) -> tuple[str | None, int]:
        """(reply text or None after retries, requests sent): a plain completion."""
        reply, sent, kind = await self._post(self._payload(prompt))
        self._record(kind or "ok")
        return reply, sent

    async def chat(self, messages: list[dict], **sampling) -> tuple[str | None, int, str | None]:
        """(reply text or None, requests sent, failure kind or None) for a chat with sampling settings
        (``temperature``, ``top_p``, ``max_tokens``, ``seed``, ...) that replace the client's defaults."""
        body = self._payload("", sampling.pop("temperature", 0.0), sampling.pop("max_tokens", None))
        body["messages"] = messages
        body.update({k: v for k, v in sampling.items() if v is not None})
        reply, sent, kind = await self._post(body)
        self._record(kind or "ok")
        return reply, sent, kind

    async def check(self, attempts: int = 2, timeout_s: float | None = None) -> None:
        """One small request, retried ``attempts`` times; raises :class:`LLMUnreachableError` or
        :class:`LLMConfigError` with the URL and what was tried. Run it before a long job."""
        s = self.settings
        session = self._ensure_session()
        body = self._payload("Reply with: Score: 1", max_tokens=4)
        errors = []
        for i in range(attempts):
            try:
                await self._attempt(session, body, timeout_s or s.timeout_s)
                self._last_ok = time.monotonic()
                return
            except _Failure as f:
                errors.append(str(f))
                if i + 1 < attempts:
                    await asyncio.sleep(min(2.0, s.backoff_base_s * 2**i))
        hint = ""
        if s.endpoint.startswith("https://") and any("SSL" in e or "ssl" in e for e in errors):
            hint = " (the server may speak plain http: try http://)"
        if all(e.startswith("http_5xx") for e in errors):
            # verl's reward router turns a replica's 4xx into a bare 500: find out whether our extra fields are it
            if s.extra_body:
                plain = {k: v for k, v in body.items() if k not in s.extra_body}
                try:
                    await self._attempt(session, plain, timeout_s or s.timeout_s)
                except (_Failure, LLMConfigError):
                    pass
                else:
                    raise LLMConfigError(
                        f"{s.role} at {s.endpoint} rejects the request fields of {s.setting_prefix}extra_body "
                        f"{sorted(s.extra_body)} (HTTP 500 with them, 200 without; verl's router reports a "
                        "replica's 4xx as 500): remove them or use a server that supports them"
                    )
            hint += (
                " (a 500 from verl's reward router can be a replica's 4xx, e.g. a prompt over its max_model_len: "
                "see the router's and the replica's log)"
            )
        raise LLMUnreachableError(
            f"{s.role} at {s.endpoint} did not answer: {attempts} request(s), last error {errors[-1]}{hint}"
        )

    async def ask_cached(self, key: tuple[str, str], prompt: str, parse: Callable[[str], int | None]) -> Verdict:
        """``parse`` of the reply to ``prompt``; ``key`` identifies equivalent requests for dedupe and caching."""
        if key in self._cache:
            self._cache.move_to_end(key)
            return Verdict(score=self._cache[key], cache_hit=True)
        if key in self._inflight:
            score, error, parse_failure = await asyncio.shield(self._inflight[key])
            return Verdict(score=score, cache_hit=True, shared=True, error=error, parse_failure=parse_failure)
        future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            usage: dict = {}
            score, calls, kind = await self.ask(prompt, parse, usage=usage)
            verdict = Verdict(
                score=score,
                calls=calls,
                prompt_tokens=usage.get("prompt_tokens", 0),
                completion_tokens=usage.get("completion_tokens", 0),
                tokens_estimated=bool(usage.get("estimated")),
            )
            verdict.parse_failure = kind == "unparsable"
            verdict.error = None if kind in (None, "unparsable") else kind
            if score is not None:  # failures are not cached: the next identical sample tries again
                self._cache[key] = score
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
