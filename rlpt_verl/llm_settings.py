"""Settings, errors and the per-sample result of :class:`rlpt_verl.llm_client.LLMClient` (no I/O here).

``reply_mode`` says how a reply is asked for: ``generate`` (free text, parsed by the caller), ``choice`` (the
server constrains the reply to one of ``reply_choices``: vLLM's structured outputs) or ``logprob`` (one token
after the assistant prefix ``reply_prefix``, returned as its top log-probabilities). See
:mod:`rlpt_verl.llm_replies`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .llm_replies import REPLY_MODES


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
    reply_mode: str = "generate"  # generate | choice | logprob (rlpt_verl.llm_replies)
    reply_choices: tuple[str, ...] = ()  # the replies a "choice" server may give
    reply_prefix: str = ""  # the assistant text a "logprob" request continues ("Score: " for the judge)
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
        if self.reply_mode not in REPLY_MODES:
            problems.append(f"{p}reply_mode must be one of {list(REPLY_MODES)}, got {self.reply_mode!r}")
        elif self.reply_mode == "choice" and len(self.reply_choices) < 2:
            problems.append(f"{p}reply_mode choice needs at least two reply_choices")
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
    p_one: float | None = None  # reply_mode logprob: P(1) / (P(0) + P(1)) of the verdict token
