"""The RPT byte-prefix reward manager for verl 0.9.1's reward loop (arXiv 2506.08007; verl 0.9.1).

Registered as ``rpt`` (``reward.reward_manager.name=rpt``, via the ``verl.plugins`` entry point) and
loadable as ``reward.reward_manager.source=importlib``, ``module.path=pkg://rlpt_verl.reward.rpt_manager``,
``name=RPTRewardManager``. Rows come from ``rlpt build-rpt``: ``reward_model.ground_truth`` is the true
continuation and ``reward_model.token_byte_ends`` its token boundaries under the policy's tokenizer.

Option (``+reward.reward_kwargs.rpt_require_think_end=false``): accept a boxed answer without a
``</think>`` before it, for policies that do not think in tags (the paper requires it; default true).
"""

from __future__ import annotations

from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase
from verl.experimental.reward_loop.reward_manager.registry import register

from .length_budget import LENGTH_KWARGS, length_budget
from .response import budgeted, decode_response_off_loop
from .rpt_reward import BOXED, RPTScore, rpt_reward

# Every sample returns exactly these numeric keys (verl stacks them across the batch).
EXTRA_KEYS = (
    "acc",  # the 0/1 reward
    "format_error",  # no `</think>`, or no `\boxed{}` with matched braces after it
    "no_think_end",
    "no_boxed",
    "empty",  # an empty box
    "mid_token",  # a byte prefix of the truth that ends inside a token
    "beyond_reference",  # longer than the stored continuation, which it starts with: cannot be checked
    "mismatch",
    "tokens_matched",  # whole tokens the prediction covers (0 unless it scores)
    "pred_bytes",
)


RPT_KWARGS = {"rpt_require_think_end": True}


def rpt_options(config) -> dict:
    """The `rpt` manager's settings from ``reward.reward_kwargs``, checked; unknown keys are an error (a typo
    would otherwise leave the default in place on the cluster)."""
    reward = config.get("reward") if hasattr(config, "get") else None
    kwargs = dict((reward.get("reward_kwargs") if reward is not None else None) or {})
    unknown = sorted(k for k in kwargs if k not in RPT_KWARGS and k not in LENGTH_KWARGS)
    if unknown:
        raise ValueError(
            f"unknown rpt reward setting(s) {unknown} in reward.reward_kwargs; known: "
            f"{sorted([*RPT_KWARGS, *LENGTH_KWARGS])}"
        )
    options = {k: kwargs.get(k, default) for k, default in RPT_KWARGS.items()}
    for key, value in options.items():
        if not isinstance(value, bool):
            raise ValueError(f"reward.reward_kwargs.{key} must be true or false, got {value!r}")
    options["length_budget"] = length_budget(kwargs)  # the optional reasoning budget (length_budget.py)
    return options


def score_info(result: RPTScore) -> dict:
    """The manager's extra info for one scored response."""
    info = dict.fromkeys(EXTRA_KEYS, 0.0)
    info["acc"] = result.score
    info["format_error"] = float(result.outcome in ("no_think_end", "no_boxed"))
    for outcome in ("no_think_end", "no_boxed", "empty", "mid_token", "beyond_reference", "mismatch"):
        info[outcome] = float(result.outcome == outcome)
    info["tokens_matched"] = float(result.tokens_matched)
    info["pred_bytes"] = float(len((result.prediction or "").encode("utf-8")))
    return info


@register("rpt")
class RPTRewardManager(RewardManagerBase):
    """Rule-based next-token reward: 1 iff the boxed prediction covers whole tokens of the truth."""

    def __init__(self, config, tokenizer, compute_score=None, reward_router_address=None, reward_model_tokenizer=None):
        super().__init__(config, tokenizer, compute_score)
        options = rpt_options(config)
        self.require_think_end, self.budget = options["rpt_require_think_end"], options["length_budget"]

    async def run_single(self, data) -> dict:
        data_item = data[-1:][0]  # multi-sequence outputs: score the last sequence, as verl's naive manager
        truth = data_item.non_tensor_batch["reward_model"]
        ends = truth.get("token_byte_ends")
        if ends is None:
            raise KeyError(
                "reward_model.token_byte_ends is missing: the `rpt` manager scores rows written by `rlpt build-rpt`"
            )
        response = await decode_response_off_loop(self.tokenizer, data_item)
        result = rpt_reward(response, str(truth["ground_truth"]), list(ends), self.require_think_end)
        info = score_info(result)
        score = await budgeted(self.budget, result.score, info, response, BOXED, self.tokenizer, data_item)
        return {"reward_score": score, "reward_extra_info": info}
