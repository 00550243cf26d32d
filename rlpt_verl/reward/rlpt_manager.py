"""The RLPT prefix-judge reward manager for verl 0.9.1's reward loop (SPEC §2, §4).

Registered as ``rlpt`` (``reward.reward_manager.name=rlpt``, via the ``verl.plugins`` entry point) and
loadable as ``reward.reward_manager.source=importlib``, ``module.path=pkg://rlpt_verl.reward.rlpt_manager``,
``name=RLPTRewardManager``. Settings come from ``reward.reward_kwargs`` (see :func:`judge_settings`), or,
when verl manages the judge, from ``reward_router_address`` and ``reward.reward_model.model_path``.
"""

from __future__ import annotations

from typing import Any

from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase
from verl.experimental.reward_loop.reward_manager.registry import register

from .judge_client import JudgeClient, JudgeConfigError, JudgeSettings
from .prefix_judge import judge_prompt, normalize_ws, precheck
from .response import decode_response

# Every sample returns exactly these numeric keys (verl stacks them across the batch).
EXTRA_KEYS = (
    "acc",  # the 0/1 reward
    "format_error",  # no complete prediction tag pair, or nothing but whitespace/punctuation inside
    "too_long",  # prediction longer than max_length_ratio x reference: cannot be its prefix
    "injection",  # prediction addresses the judge (Score: lines, prompt sections, instructions, tags)
    "shortcut",  # textual prefix of the reference: 1 without a judge call
    "judge_called",  # this sample sent at least one request to the judge
    "judge_requests",  # HTTP requests this sample sent (retries included)
    "cache_hit",  # served by an identical (reference, prediction) in flight or recently judged
    "judge_error",  # the judge call failed after retries: scored 0
    "parse_failure",  # the judge replied twice without a strict "Score: 0/1": scored 0
    "pred_chars",  # length of the extracted prediction
)

_KWARG_FIELDS = {
    "judge_base_url": "base_url",
    "judge_model": "model",
    "judge_api_key_env": "api_key_env",
    "judge_concurrency": "concurrency",
    "judge_timeout_s": "timeout_s",
    "judge_max_retries": "max_retries",
    "judge_retry_budget_s": "retry_budget_s",
    "judge_backoff_base_s": "backoff_base_s",
    "judge_backoff_max_s": "backoff_max_s",
    "judge_max_tokens": "max_tokens",
    "judge_chat_template_kwargs": "chat_template_kwargs",
    "judge_cache_size": "cache_size",
    "judge_down_window": "down_window",
    "judge_down_fraction": "down_fraction",
    "judge_down_min_calls": "down_min_calls",
}
_MANAGER_KWARGS = {"max_length_ratio": 4.0, "prefix_shortcut": True}


def _plain(value: Any) -> Any:
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(value, DictConfig | ListConfig):
            return OmegaConf.to_container(value, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    return value


def judge_settings(config: Any, reward_router_address: str | None = None) -> tuple[JudgeSettings, dict]:
    """(JudgeSettings, manager options) from ``config.reward.reward_kwargs``; raises JudgeConfigError."""
    reward = config.get("reward") if hasattr(config, "get") else None
    kwargs = dict(_plain(reward.get("reward_kwargs")) or {}) if reward is not None else {}
    unknown = [k for k in kwargs if k.startswith("judge_") and k not in _KWARG_FIELDS]
    if unknown:
        raise JudgeConfigError(f"unknown RLPT judge setting(s) {unknown}; known: {sorted(_KWARG_FIELDS)}")
    fields = {_KWARG_FIELDS[k]: v for k, v in kwargs.items() if k in _KWARG_FIELDS}
    if reward_router_address:  # verl-managed judge: its router, and the model path vLLM was started with
        fields["base_url"] = reward_router_address
        model_path = reward.get("reward_model", {}).get("model_path") if reward is not None else None
        fields["model"] = fields.get("model") or model_path
    fields.setdefault("base_url", "")
    fields.setdefault("model", "")
    fields["chat_template_kwargs"] = dict(fields.get("chat_template_kwargs") or {})
    settings = JudgeSettings(**fields)
    settings.validate()
    options = {k: kwargs.get(k, default) for k, default in _MANAGER_KWARGS.items()}
    if not float(options["max_length_ratio"]) > 0:
        raise JudgeConfigError(f"max_length_ratio must be > 0, got {options['max_length_ratio']!r}")
    return settings, options


def compute_score_unused(**kwargs: Any) -> float:
    """Named by recipes as ``reward.custom_reward_function`` when verl manages the judge: without one,
    verl 0.9.1 routes every sample to its discriminative ``/classify`` path and bypasses the manager.
    The `rlpt` manager never calls it."""
    raise RuntimeError("compute_score_unused is a routing placeholder; the `rlpt` reward manager scores samples")


@register("rlpt")
class RLPTRewardManager(RewardManagerBase):
    """Binary prefix reward: 1 iff the prediction is a semantically valid prefix of the reference."""

    def __init__(self, config, tokenizer, compute_score=None, reward_router_address=None, reward_model_tokenizer=None):
        super().__init__(config, tokenizer, compute_score)
        settings, options = judge_settings(config, reward_router_address)
        self.max_length_ratio = float(options["max_length_ratio"])
        self.prefix_shortcut = bool(options["prefix_shortcut"])
        self.client = JudgeClient.shared(settings)  # one pool, semaphore and cache per worker process

    async def score(self, response: str, reference: str) -> tuple[float, dict]:
        """Score one decoded response against its judge reference."""
        info = dict.fromkeys(EXTRA_KEYS, 0.0)
        check = precheck(response, reference, self.max_length_ratio, self.prefix_shortcut)
        info["pred_chars"] = float(len(check.prediction or ""))
        info["format_error"] = float(check.format_error)
        info["too_long"] = float(check.too_long)
        info["injection"] = float(check.injection is not None)
        info["shortcut"] = float(check.shortcut)
        score = check.score
        if check.needs_judge:
            key = (reference, normalize_ws(check.prediction))
            verdict = await self.client.judge(key, judge_prompt(reference, check.prediction))
            score = float(verdict.score or 0)
            info["judge_called"] = float(verdict.calls > 0)
            info["judge_requests"] = float(verdict.calls)
            info["cache_hit"] = float(verdict.cache_hit)
            info["judge_error"] = float(verdict.error)
            info["parse_failure"] = float(verdict.parse_failure)
        info["acc"] = score
        return score, info

    async def run_single(self, data) -> dict:
        data_item = data[-1:][0]  # multi-sequence outputs: score the last sequence, as verl's naive manager
        reference = data_item.non_tensor_batch["reward_model"]["ground_truth"]
        score, info = await self.score(decode_response(self.tokenizer, data_item), str(reference))
        return {"reward_score": score, "reward_extra_info": info}
