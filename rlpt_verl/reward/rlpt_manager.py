"""The RLPT prefix-judge reward manager for verl 0.9.1's reward loop (arXiv 2509.19249; verl 0.9.1).

Registered as ``rlpt`` (``reward.reward_manager.name=rlpt``, via the ``verl.plugins`` entry point) and
loadable as ``reward.reward_manager.source=importlib``, ``module.path=pkg://rlpt_verl.reward.rlpt_manager``,
``name=RLPTRewardManager``. Settings come from ``reward.reward_kwargs`` (see :func:`judge_settings`), or,
when verl manages the judge, from ``reward_router_address`` and ``reward.reward_model.model_path``.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import fields
from typing import Any

from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase
from verl.experimental.reward_loop.reward_manager.registry import register

from rlpt_verl.llm_client import LLMConfigError, LLMSettings

from ..prompts import JUDGE_LAYOUTS, PRED_OPEN
from .judge_replicas import JudgeReplicas, judge_urls
from .length_budget import LENGTH_KWARGS, length_budget
from .prefix_judge import PrecheckOptions, judge_prompt, logprob_verdict, normalize_ws, parse_verdict, precheck
from .response import budgeted, decode_response_off_loop, prompt_text

# Every sample returns exactly these numeric keys (verl stacks them across the batch).
EXTRA_KEYS = (
    "acc",  # the 0/1 reward
    "format_error",  # no complete prediction tag pair, or nothing but whitespace/punctuation inside
    "too_long",  # prediction longer than max_length_ratio x reference: cannot be its prefix
    "injection",  # prediction addresses the judge (Score: lines, prompt sections, instructions, tags)
    "alternatives",  # prediction lists several candidate continuations
    "echo",  # prediction mostly repeats text the policy was shown (context, next segment, instructions)
    "too_short",  # prediction covers less than min_target_coverage of the target sentence s_i
    "shortcut",  # textual prefix of the reference covering s_i: 1 without a judge call
    "judge_called",  # this sample sent at least one request to the judge
    "judge_requests",  # HTTP requests this sample sent (retries included)
    "cache_hit",  # served by an identical (reference, prediction) in flight or recently judged
    "judge_shared",  # of those, served by an identical call in flight (a duplicate in the batch), not the cache
    "judge_replica",  # which judge URL answered (0: the first; several URLs route by the reference)
    "judge_prompt_tokens",  # the judge's prompt tokens for this sample (server `usage`; see judge_tokens_estimated)
    "judge_completion_tokens",  # the judge's reply tokens
    "judge_tokens_estimated",  # 1: the server reported no `usage`, the tokens are estimated at 4 chars per token
    "judge_seconds",  # seconds this sample waited on the judge (its call, or the identical call it shared)
    "reward_seconds",  # seconds run_single took for this sample (decode, guards and judge)
    # the next three mean "no verdict": score() reports them (judge-eval, quickstart) and run_single raises
    # UnjudgedSampleError, so inside verl the sample is missing (dropped and counted), never trained as a 0
    "judge_error",  # the judge call failed after retries (timeouts, connection, 5xx, context length)
    "context_overflow",  # the judge said the prompt exceeds its context length (also counted in judge_error)
    "parse_failure",  # the judge replied twice without a "Score: 0/1" line (logprob mode: no 0/1 among its tokens)
    "judge_p_one",  # logprob mode: P(1) / (P(0) + P(1)) of the judge's verdict token (0 when not judged that way)
    "coverage",  # share of s_i's words the prediction covers (0 for format errors and guards before it)
    "pred_chars",  # length of the extracted prediction
)

_KWARG_FIELDS = {
    "judge_base_url": "base_url",
    "judge_model": "model",
    "judge_api_key_env": "api_key_env",
    "judge_concurrency": "concurrency",
    "judge_initial_concurrency": "initial_concurrency",
    "judge_timeout_s": "timeout_s",
    "judge_max_retries": "max_retries",
    "judge_retry_budget_s": "retry_budget_s",
    "judge_backoff_base_s": "backoff_base_s",
    "judge_backoff_max_s": "backoff_max_s",
    "judge_max_tokens": "max_tokens",
    "judge_chat_template_kwargs": "chat_template_kwargs",
    "judge_extra_body": "extra_body",
    "judge_cache_size": "cache_size",
    "judge_down_window": "down_window",
    "judge_down_fraction": "down_fraction",
    "judge_down_min_calls": "down_min_calls",
    "judge_unparsable_fraction": "unparsable_fraction",
    "judge_reply_mode": "reply_mode",
}
# How the judge's verdict is asked for (rlpt_verl.llm_replies): the reply set of `choice`, the assistant prefix
# and the digits of `logprob`.
VERDICT_CHOICES = ("Score: 0", "Score: 1")
VERDICT_PREFIX = "Score: "
# Settings of this manager beside the client's and the guards' (checked in verdict_options).
_VERDICT_KWARGS = {"judge_prompt_layout": "paper", "judge_logprob_threshold": 0.5, "judge_soft_reward": False}
_DEFAULT_OPTIONS = PrecheckOptions()
_MANAGER_KWARGS = {f.name: getattr(_DEFAULT_OPTIONS, f.name) for f in fields(PrecheckOptions)}


PROBE_KEY = "rlpt_judge_probe"  # extra_info flag of the trainer's preflight sample (never in a dataset)


class UnjudgedSampleError(RuntimeError):
    """The judge gave no verdict for a sample (failed after retries, or never replied in the format).

    Raised from ``run_single``: verl 0.9.1's agent loop then leaves the sample out (its group trains on the
    other samples, the batch is padded) and the RLPT trainer counts it against ``data.rlpt.max_missing_share``;
    a 0 reward here would push GRPO's advantages of correct predictions negative for as long as the judge
    misbehaves. ``info`` is the sample's extra info (what ``rlpt judge-eval`` reports for it)."""

    def __init__(self, message: str, info: dict | None = None):
        super().__init__(message)
        self.info = dict(info or {})


def _plain(value: Any) -> Any:
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(value, DictConfig | ListConfig):
            return OmegaConf.to_container(value, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    return value


def judge_settings(config: Any, reward_router_address: str | None = None) -> tuple[LLMSettings, PrecheckOptions]:
    """(LLMSettings, guard options) from ``config.reward.reward_kwargs``; raises LLMConfigError.

    Every key must be known: a typo would otherwise silently leave a default in place on the cluster.
    With a verl-managed judge (``reward_router_address`` set) the URL is the router's and the model name
    is always ``reward.reward_model.model_path``, the path vLLM was started with.
    """
    reward = config.get("reward") if hasattr(config, "get") else None
    kwargs = dict(_plain(reward.get("reward_kwargs")) or {}) if reward is not None else {}
    known = {*_KWARG_FIELDS, *_MANAGER_KWARGS, *_VERDICT_KWARGS, *LENGTH_KWARGS}
    unknown = sorted(k for k in kwargs if k not in known)
    if unknown:
        raise LLMConfigError(
            f"unknown rlpt reward setting(s) {unknown} in reward.reward_kwargs; known: "
            f"{sorted([*_KWARG_FIELDS, *_VERDICT_KWARGS]) + sorted(_MANAGER_KWARGS) + list(LENGTH_KWARGS)}"
        )
    try:
        length_budget(kwargs)
    except ValueError as e:
        raise LLMConfigError(str(e)) from None
    fields_ = {_KWARG_FIELDS[k]: v for k, v in kwargs.items() if k in _KWARG_FIELDS}
    if reward_router_address:  # verl-managed judge: its router, and the model path vLLM was started with
        fields_["base_url"] = reward_router_address
        model_path = reward.get("reward_model", {}).get("model_path") if reward is not None else None
        fields_["model"] = model_path or ""
    urls = judge_urls(fields_.get("base_url"))  # one URL, or several replicas of the same judge
    if len(urls) > 1:
        fields_["base_url"], fields_["replicas"] = urls[0], tuple(urls[1:])
    elif urls:
        fields_["base_url"] = urls[0]
    fields_.setdefault("base_url", "")
    fields_.setdefault("model", "")
    for name in ("chat_template_kwargs", "extra_body"):
        value = fields_.get(name) or {}
        fields_[name] = dict(value) if isinstance(value, dict) else value
    mode = fields_.get("reply_mode", "generate")
    if mode == "choice":
        fields_["reply_choices"] = VERDICT_CHOICES
    elif mode == "logprob":
        fields_["reply_choices"], fields_["reply_prefix"] = ("0", "1"), VERDICT_PREFIX
    settings = LLMSettings(**fields_, role="RLPT judge", setting_prefix="judge_")
    settings.validate()
    verdict_options(kwargs)
    return settings, guard_options(kwargs)


def prompt_layout(kwargs: dict) -> str:
    """``judge_prompt_layout``: ``paper`` (the default: the paper's prompt verbatim) or ``cache_friendly``."""
    layout = kwargs.get("judge_prompt_layout", "paper")
    if layout not in JUDGE_LAYOUTS:
        raise LLMConfigError(f"judge_prompt_layout must be one of {sorted(JUDGE_LAYOUTS)}, got {layout!r}")
    return layout


def verdict_options(kwargs: dict) -> dict:
    """The layout, ``judge_logprob_threshold`` and ``judge_soft_reward`` among ``kwargs``, checked.

    The soft reward (P(1) of the judge's verdict token instead of its 0/1) exists only in the logprob mode,
    and is off by default: the paper's reward is binary.
    """
    out = {k: kwargs.get(k, default) for k, default in _VERDICT_KWARGS.items()}
    out["judge_prompt_layout"] = prompt_layout(kwargs)
    threshold, soft = out["judge_logprob_threshold"], out["judge_soft_reward"]
    problems = []
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold < 1:
        problems.append(f"judge_logprob_threshold must be a number in (0, 1), got {threshold!r}")
    if not isinstance(soft, bool):
        problems.append(f"judge_soft_reward must be true or false, got {soft!r}")
    elif soft and kwargs.get("judge_reply_mode", "generate") != "logprob":
        problems.append("judge_soft_reward needs judge_reply_mode=logprob (the probability comes from the logprobs)")
    if problems:
        raise LLMConfigError("invalid rlpt reward settings: " + "; ".join(problems))
    return out


def guard_options(kwargs: dict) -> PrecheckOptions:
    """The guard settings among ``kwargs``, checked; raises LLMConfigError naming the bad one."""
    values = {k: kwargs.get(k, default) for k, default in _MANAGER_KWARGS.items()}
    problems = []
    if not isinstance(values["prefix_shortcut"], bool):
        problems.append(f"prefix_shortcut must be true or false, got {values['prefix_shortcut']!r}")
    for name, low, high in (
        ("max_length_ratio", 1.0, None),
        ("min_target_coverage", 0.0, 1.0),
        ("max_echo_share", 0.0, 1.0),
    ):
        value = values[name]
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and value >= low and (high is None or value <= high)
        if not ok:
            bound = f">= {low}" if high is None else f"in [{low}, {high}]"
            problems.append(f"{name} must be a number {bound}, got {value!r}")
    if problems:
        raise LLMConfigError("invalid rlpt reward settings: " + "; ".join(problems))
    return PrecheckOptions(**{k: (v if k == "prefix_shortcut" else float(v)) for k, v in values.items()})


def compute_score_unused(**kwargs: Any) -> float:
    """Named by recipes as ``reward.custom_reward_function`` when verl manages the judge: without one,
    verl 0.9.1 routes every sample to its discriminative ``/classify`` path and bypasses the manager.
    The `rlpt` manager never calls it."""
    raise RuntimeError("compute_score_unused is a routing placeholder; the `rlpt` reward manager scores samples")


@register("rlpt")
class RLPTRewardManager(RewardManagerBase):
    """Binary prefix reward: 1 iff the prediction covers the target sentence and is a semantically valid
    prefix of the reference."""

    def __init__(self, config, tokenizer, compute_score=None, reward_router_address=None, reward_model_tokenizer=None):
        super().__init__(config, tokenizer, compute_score)
        settings, self.options = judge_settings(config, reward_router_address)
        verdict = verdict_options(dict(_plain(config.reward.get("reward_kwargs")) or {}))
        self.layout = verdict["judge_prompt_layout"]
        self.budget = length_budget(dict(_plain(config.reward.get("reward_kwargs")) or {}))
        self.soft_reward = verdict["judge_soft_reward"]
        if settings.reply_mode == "logprob":
            threshold = float(verdict["judge_logprob_threshold"])
            self.parse = functools.partial(logprob_verdict, threshold=threshold)
        else:
            self.parse = parse_verdict
        # one pool, gate and cache per worker process (per replica when judge_base_url names several)
        self.client = JudgeReplicas.shared(settings)

    async def score(
        self, response: str, reference: str, target: str | None = None, prompt_text: str = ""
    ) -> tuple[float, dict]:
        """Score one decoded response against its judge reference (``target`` = s_i, see ``precheck``)."""
        info = dict.fromkeys(EXTRA_KEYS, 0.0)
        check = precheck(response, reference, target, prompt_text, self.options)
        info["pred_chars"] = float(len(check.prediction or ""))
        for name in ("format_error", "too_long", "alternatives", "echo", "too_short", "shortcut"):
            info[name] = float(getattr(check, name))
        info["injection"] = float(check.injection is not None)
        info["coverage"] = float(check.coverage)
        score = acc = check.score  # acc: the 0/1 verdict; score: the reward (P(1) with judge_soft_reward)
        if check.needs_judge:
            key = (reference, normalize_ws(check.prediction), self.layout)  # the reference first: replicas route by it
            t0 = time.monotonic()
            verdict = await self.client.ask_cached(
                key, judge_prompt(reference, check.prediction, self.layout), self.parse
            )
            info["judge_seconds"] = time.monotonic() - t0
            score = acc = float(verdict.score or 0)
            if verdict.p_one is not None:
                info["judge_p_one"] = verdict.p_one
                if self.soft_reward:
                    score = verdict.p_one
            info["judge_called"] = float(verdict.calls > 0)
            info["judge_requests"] = float(verdict.calls)
            info["cache_hit"] = float(verdict.cache_hit)
            info["judge_shared"] = float(verdict.shared)
            info["judge_replica"] = float(verdict.replica)
            info["judge_prompt_tokens"] = float(verdict.prompt_tokens)
            info["judge_completion_tokens"] = float(verdict.completion_tokens)
            info["judge_tokens_estimated"] = float(verdict.tokens_estimated)
            info["judge_error"] = float(verdict.error is not None)
            info["context_overflow"] = float(verdict.error == "context_length")
            info["parse_failure"] = float(verdict.parse_failure)
        info["acc"] = acc
        return score, info

    async def probe(self) -> dict:
        """One small request to the judge from this worker (its URL, key and network): the trainer's preflight.
        Raises LLMUnreachableError / LLMConfigError naming the URL."""
        import socket

        await self.client.check()
        node_id = None
        try:
            import ray

            node_id = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
        except Exception:  # outside Ray (a worker built in-process): the host and pid say enough
            pass
        return {
            "endpoint": self.client.settings.endpoint,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "node_id": node_id,
        }

    async def run_single(self, data) -> dict:
        extra = data.non_tensor_batch.get("extra_info")
        if extra is not None and len(extra) and isinstance(extra[-1], dict) and extra[-1].get(PROBE_KEY):
            info = dict.fromkeys(EXTRA_KEYS, 0.0)
            return {"reward_score": 0.0, "reward_extra_info": info, "rlpt_probe": await self.probe()}
        t0 = time.monotonic()
        data_item = data[-1:][0]  # multi-sequence outputs: score the last sequence, as verl's naive manager
        reference = data_item.non_tensor_batch["reward_model"]["ground_truth"]
        extra = data_item.non_tensor_batch.get("extra_info")
        target = extra.get("target") if isinstance(extra, dict) else None
        response = await decode_response_off_loop(self.tokenizer, data_item)
        score, info = await self.score(
            response, str(reference), str(target) if target else None, prompt_text(data_item, self.tokenizer)
        )
        info["reward_seconds"] = time.monotonic() - t0
        if info["judge_error"] or info["parse_failure"]:
            why = (
                "its prompt exceeds the judge's context"
                if info["context_overflow"]
                else (
                    "its replies had no Score: 0/1 line" if info["parse_failure"] else "the calls failed after retries"
                )
            )
            raise UnjudgedSampleError(
                f"{self.client.settings.role} at {self.client.settings.endpoint} gave no verdict for this sample "
                f"({why}; last error: {self.client.last_error or 'none'}): dropped as missing, not scored 0",
                info,
            )
        score = await budgeted(self.budget, score, info, response, PRED_OPEN, self.tokenizer, data_item)
        return {"reward_score": score, "reward_extra_info": info}
