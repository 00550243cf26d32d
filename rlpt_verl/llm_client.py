"""Async client for an OpenAI-compatible ``/v1/chat/completions`` server (vLLM, SGLang, transformers serve,
llama.cpp), shared by every reward-manager instance in a process; also the quality rater's transport.

One aiohttp connection pool per worker process. What keeps a slow or recovering server usable:

Settings and errors live in :mod:`rlpt_verl.llm_settings`, the pacing (concurrency, breaker, timeouts) in
:mod:`rlpt_verl.llm_gate`, the reply modes (free text, a constrained choice, one token's log-probabilities)
in :mod:`rlpt_verl.llm_replies`; their names are re-exported here.

- **Adaptive concurrency** (AIMD): start at ``initial_concurrency`` requests in flight, add about one per
  round of successes while latency stays near the best seen, halve on a timeout, 429 or 5xx, never more
  than ``concurrency``. A single-request server (``transformers serve``) is not flooded.
- **Circuit breaker**: after a failure every request waits; one probe goes out (after a jittered backoff, or
  the server's ``Retry-After``), and only its success releases the others. A server that resumes after a
  stall first drains what it already has, instead of a storm of retries that each time out again.
- **Latency-aware timeouts**: a request's timeout is at least ``timeout_s`` and at least 4x the recent
  latency; each consecutive timeout doubles it (bounded), so a loaded server gets the time it needs.
- Equivalent requests (the caller's key) in flight or recently answered share one call (bounded LRU).
- **Preflight** (:meth:`LLMClient.check`) in the settings' reply mode: a server that cannot do the mode, or
  rejects a field we add, fails in one line naming it.
- 4xx other than 429 fail fast with the server's message; a 400 about context length is reported as such.
- A rolling window of call outcomes turns a dead server (transport failures) into :class:`LLMDownError`
  and one that ignores the reply format (unparsable replies, their own limit) into :class:`LLMFormatError`,
  both naming the URL, instead of silent zeros. Only a failing call raises: a call that succeeds returns
  its reply even while the window still remembers an outage.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from .llm_gate import Clock, Failure, Gate, retry_after_s
from .llm_replies import mode_fields, read_reply, shape_body
from .llm_settings import (
    LLMConfigError,
    LLMDownError,
    LLMFormatError,
    LLMSettings,
    LLMUnreachableError,
    Verdict,
)

__all__ = [
    "LLMClient",
    "LLMConfigError",
    "LLMDownError",
    "LLMFormatError",
    "LLMSettings",
    "LLMUnreachableError",
    "Verdict",
]

logger = logging.getLogger(__name__)

PROBE_PROMPT = "Reply with: Score: 1"  # the preflight's request: tiny, and answerable in every reply mode
CHOICE_PROBE_PROMPT = "Name one colour."  # a free reply is not one of the choices: a server that ignores them shows


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


class LLMClient:
    """Per-process client; use :meth:`shared` to get the process's instance for some settings."""

    _instances: dict[str, LLMClient] = {}

    @classmethod
    def shared(cls, settings: LLMSettings) -> LLMClient:
        key = json.dumps(asdict(settings), sort_keys=True)
        if key not in cls._instances:
            cls._instances[key] = cls(settings)
        return cls._instances[key]

    @classmethod
    def forget_shared(cls) -> None:
        """Drop the process's shared clients (their caches and outcome windows): runs that must not see each
        other's verdicts or failures, such as `rlpt judge-eval --compare-modes`, start from nothing."""
        cls._instances.clear()

    def __init__(self, settings: LLMSettings):
        settings.validate()
        self.settings = settings
        self._session = None
        self._session_loop = None
        self._gate: Gate | None = None
        self._cache: OrderedDict[tuple[str, ...], Any] = OrderedDict()
        self._inflight: dict[tuple[str, ...], asyncio.Future] = {}
        self._outcomes: deque[str] = deque(maxlen=settings.down_window)  # "ok" or a failure kind
        self._last_error = ""
        self._last_reply = ""
        self._last_ok: float | None = None  # when a call last succeeded (the stall rule)
        self._last_usage: dict | None = None  # `usage` of the reply _attempt parsed last (read right after it)
        self._last_rejection = ""  # the server's words of its last 4xx
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
            self._gate = Gate(self.settings)
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
        return shape_body(body, s.reply_mode, s.reply_choices, s.reply_prefix)

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

    async def _attempt(self, session, body: dict, timeout: float, shaped: bool = True) -> str | dict[str, float]:
        """One request: the reply as the settings' ``reply_mode`` reads it (text, or top log-probabilities), or
        the plain text when ``shaped`` is False (a request built without the mode's fields)."""
        import aiohttp

        s = self.settings
        try:
            async with session.post(
                s.endpoint, json=body, headers=self._headers(), timeout=aiohttp.ClientTimeout(total=timeout)
            ) as resp:
                text = await resp.text()
                if resp.status == 429 or resp.status >= 500:
                    kind = "http_429" if resp.status == 429 else "http_5xx"
                    raise Failure(
                        kind,
                        f"HTTP {resp.status}: {text[:200]}",
                        retry_after=retry_after_s(resp.headers.get("Retry-After")),
                    )
                if resp.status == 400 and _CONTEXT.search(text):
                    raise Failure("context_length", f"HTTP 400: {text[:300]}", transient=False)
                if resp.status >= 400:
                    self._last_rejection = f"HTTP {resp.status}: {text[:200]}"
                    raise LLMConfigError(
                        f"{s.role} at {s.endpoint} rejected the request (HTTP {resp.status}): {text[:300]}. "
                        f"Check {s.setting_prefix}model ({s.model!r}), the API key and the URL"
                    )
                try:
                    body = json.loads(text)
                    self._last_usage = body.get("usage") if isinstance(body.get("usage"), dict) else None
                    return read_reply(body["choices"][0], s.reply_mode if shaped else "generate")
                except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
                    raise Failure("malformed", f"{type(e).__name__}: {text[:200]}") from None
        except (asyncio.TimeoutError, TimeoutError):
            raise Failure("timeout", f"no reply within {timeout:.1f}s") from None
        except (aiohttp.ClientError, ConnectionError, OSError) as e:
            raise Failure("connection", f"{type(e).__name__}: {e}") from None

    async def _post(self, body: dict, usage: dict | None = None) -> tuple[str | None, int, str | None]:
        """One completion with retries: (reply text or None, requests sent, failure kind or None). With
        ``usage``, the reply's token counts are added to it (``prompt_tokens``, ``completion_tokens``), from the
        server's ``usage`` or, when it gives none, estimated at 4 characters per token (``estimated`` set)."""
        s = self.settings
        session = self._ensure_session()
        gate = self._gate
        clock = Clock(s.retry_budget_s)
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
                    _add_usage(usage, self._last_usage, body, reply if isinstance(reply, str) else "1")
            except Failure as f:
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
        # a greedy reply that did not parse would only repeat itself: once more, sampled. A constrained reply
        # (choice, logprob) would not change: one attempt.
        temperatures = (0.0, 0.7) if self.settings.reply_mode == "generate" else (0.0,)
        for temperature in temperatures:
            reply, sent, kind = await self._post(self._payload(prompt, temperature, max_tokens), usage)
            calls += sent
            if kind is not None:
                self._record(kind)
                return None, calls, kind
            value = parse(reply)
            if value is not None:
                self._record("ok")
                return value, calls, None
            self._last_reply = str(reply or "")
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

    def _plain_body(self, prompt: str, max_tokens: int) -> dict[str, Any]:
        """A request with neither ``extra_body`` nor the reply mode's fields: what any server takes."""
        body = {
            "model": self.settings.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0.0,
            "max_tokens": max_tokens,
        }
        if self.settings.chat_template_kwargs:
            body["chat_template_kwargs"] = dict(self.settings.chat_template_kwargs)
        return body

    def _added_fields(self) -> str:
        """The request fields this client adds to a plain request, as a message names them."""
        s = self.settings
        parts = []
        if s.extra_body:
            parts.append(f"{s.setting_prefix}extra_body {sorted(s.extra_body)}")
        if s.reply_mode != "generate":
            added = sorted(mode_fields(s.reply_mode, s.reply_choices, s.reply_prefix))
            parts.append(f"{s.setting_prefix}reply_mode={s.reply_mode} {added}")
        return " and ".join(parts)

    async def _answers_plain(self, session, timeout_s: float) -> bool:
        """Whether the server answers a plain request (so the fields we add are what it rejects)."""
        if not self._added_fields():
            return False
        try:
            await self._attempt(session, self._plain_body(PROBE_PROMPT, 4), timeout_s, shaped=False)
        except (Failure, LLMConfigError):
            return False
        return True

    def _check_reply(self, reply: str | dict[str, float]) -> None:
        """The probe's reply is what the reply mode promises; else :class:`LLMConfigError` naming the mode."""
        s, p = self.settings, self.settings.setting_prefix
        fix = f"use a server that supports it (vLLM) or {p}reply_mode=generate"
        if s.reply_mode == "choice" and reply not in s.reply_choices:
            raise LLMConfigError(
                f"{s.role} at {s.endpoint} does not constrain its replies ({p}reply_mode=choice): asked for one "
                f"of {list(s.reply_choices)}, it wrote {str(reply)[:60]!r}; {fix}"
            )
        if s.reply_mode == "logprob":
            if not isinstance(reply, dict) or not reply:
                raise LLMConfigError(
                    f"{s.role} at {s.endpoint} returned no token log-probabilities ({p}reply_mode=logprob); {fix}"
                )
            if s.reply_choices and not any(t.strip() in s.reply_choices for t in reply):
                raise LLMConfigError(
                    f"{s.role} at {s.endpoint}: after the prefix {s.reply_prefix!r} none of "
                    f"{list(s.reply_choices)} is among its likely next tokens ({sorted(reply)[:8]}): it may not "
                    f"continue the assistant prefix (continue_final_message) ({p}reply_mode=logprob); {fix}"
                )

    async def check(self, attempts: int = 2, timeout_s: float | None = None) -> None:
        """One small request in the settings' reply mode, retried ``attempts`` times; raises
        :class:`LLMUnreachableError` or :class:`LLMConfigError` with the URL and what was tried (a server that
        cannot do the reply mode fails here, in one line). Run it before a long job."""
        s = self.settings
        session = self._ensure_session()
        timeout = timeout_s or s.timeout_s
        prompt = CHOICE_PROBE_PROMPT if s.reply_mode == "choice" else PROBE_PROMPT
        body = self._payload(prompt, max_tokens=4)
        errors = []
        for i in range(attempts):
            try:
                reply = await self._attempt(session, body, timeout)
            except LLMConfigError:  # a 4xx: ours to fix; say which of our fields when a plain request passes
                rejection = self._last_rejection
                if await self._answers_plain(session, timeout):
                    raise LLMConfigError(
                        f"{s.role} at {s.endpoint} rejects the request fields of {self._added_fields()} "
                        f"({rejection}; it answers without them): remove them or use a server that supports them"
                        + (f" (vLLM), or {s.setting_prefix}reply_mode=generate" if s.reply_mode != "generate" else "")
                    ) from None
                raise
            except Failure as f:
                errors.append(str(f))
                if i + 1 < attempts:
                    await asyncio.sleep(min(2.0, s.backoff_base_s * 2**i))
                continue
            self._last_ok = time.monotonic()
            self._check_reply(reply)
            return
        hint = ""
        if s.endpoint.startswith("https://") and any("SSL" in e or "ssl" in e for e in errors):
            hint = " (the server may speak plain http: try http://)"
        if all(e.startswith("http_5xx") for e in errors):
            # verl's reward router turns a replica's 4xx into a bare 500: find out whether our fields are it
            if await self._answers_plain(session, timeout):
                raise LLMConfigError(
                    f"{s.role} at {s.endpoint} rejects the request fields of {self._added_fields()} "
                    "(HTTP 500 with them, 200 without; verl's router reports a replica's 4xx as 500): remove them "
                    "or use a server that supports them"
                    + (f" (vLLM), or {s.setting_prefix}reply_mode=generate" if s.reply_mode != "generate" else "")
                )
            hint += (
                " (a 500 from verl's reward router can be a replica's 4xx, e.g. a prompt over its max_model_len: "
                "see the router's and the replica's log)"
            )
        raise LLMUnreachableError(
            f"{s.role} at {s.endpoint} did not answer: {attempts} request(s), last error {errors[-1]}{hint}"
        )

    async def ask_cached(self, key: tuple[str, ...], prompt: str, parse: Callable[[Any], Any]) -> Verdict:
        """``parse`` of the reply to ``prompt``; ``key`` identifies equivalent requests for dedupe and caching.
        ``parse`` gives a 0/1 score, or (score, probability of 1) in the logprob mode, or None."""
        if key in self._cache:
            self._cache.move_to_end(key)
            return _verdict(self._cache[key], cache_hit=True)
        if key in self._inflight:
            value, error, parse_failure = await asyncio.shield(self._inflight[key])
            return _verdict(value, cache_hit=True, shared=True, error=error, parse_failure=parse_failure)
        future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            usage: dict = {}
            value, calls, kind = await self.ask(prompt, parse, usage=usage)
            verdict = _verdict(
                value,
                calls=calls,
                prompt_tokens=usage.get("prompt_tokens", 0),
                completion_tokens=usage.get("completion_tokens", 0),
                tokens_estimated=bool(usage.get("estimated")),
            )
            verdict.parse_failure = kind == "unparsable"
            verdict.error = None if kind in (None, "unparsable") else kind
            if value is not None:  # failures are not cached: the next identical sample tries again
                self._cache[key] = value
                if len(self._cache) > self.settings.cache_size:
                    self._cache.popitem(last=False)
            future.set_result((value, verdict.error, verdict.parse_failure))
            return verdict
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # mark retrieved: waiters get it, nobody gets "never retrieved" noise
            raise
        finally:
            self._inflight.pop(key, None)


def _verdict(value: Any, **fields: Any) -> Verdict:
    """A :class:`Verdict` from a parsed value: a score, (score, probability of 1), or None."""
    if isinstance(value, tuple):
        return Verdict(score=value[0], p_one=value[1], **fields)
    return Verdict(score=value, **fields)
