"""The masked-span reward manager for verl 0.9.1's reward loop: a judge-free control for RLPT.

Registered as ``span`` (``reward.reward_manager.name=span``, via the ``verl.plugins`` entry point) and
loadable as ``reward.reward_manager.source=importlib``, ``module.path=pkg://rlpt_verl.reward.span_manager``,
``name=SpanRewardManager``. Rows come from ``rlpt build-span``: ``reward_model.ground_truth`` is the masked
span; the rule is :func:`rlpt_verl.reward.span_reward.span_reward`. It takes no settings.
"""

from __future__ import annotations

from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase
from verl.experimental.reward_loop.reward_manager.registry import register

from ..prompts import PRED_OPEN
from .length_budget import LENGTH_KWARGS, length_budget
from .response import budgeted, decode_response_off_loop, prompt_text
from .span_reward import SpanScore, span_reward

# Every sample returns exactly these numeric keys (verl stacks them across the batch).
EXTRA_KEYS = (
    "acc",  # the 0/1 reward
    "format_error",  # no complete prediction tag pair, or nothing but whitespace/punctuation inside
    "alternatives",  # the prediction lists several candidates
    "echo",  # the prediction mostly repeats the material the policy was shown
    "mismatch",  # a prediction that is not the span after normalisation
    "pred_words",  # words in the prediction
    "span_words",  # words in the masked span
)


def span_options(config) -> dict:
    """The `span` manager's settings: only the optional length budget (``length_budget_*``); any other key
    is a mistake (a setting meant for another manager, or a typo) and is refused, as the other managers do."""
    reward = config.get("reward") if hasattr(config, "get") else None
    kwargs = dict((reward.get("reward_kwargs") if reward is not None else None) or {})
    unknown = sorted(k for k in kwargs if k not in LENGTH_KWARGS)
    if unknown:
        raise ValueError(
            f"the span reward manager takes only the length budget {list(LENGTH_KWARGS)} in "
            f"reward.reward_kwargs; got {unknown}"
        )
    return {"length_budget": length_budget(kwargs)}


def score_info(result: SpanScore, span: str) -> dict:
    info = dict.fromkeys(EXTRA_KEYS, 0.0)
    info["acc"] = result.score
    for outcome in ("format_error", "alternatives", "echo", "mismatch"):
        info[outcome] = float(result.outcome == outcome)
    info["pred_words"] = float(len((result.prediction or "").split()))
    info["span_words"] = float(len(span.split()))
    return info


@register("span")
class SpanRewardManager(RewardManagerBase):
    """Exact-match reward for a masked span: 1 iff the tagged prediction equals the span, normalised."""

    def __init__(self, config, tokenizer, compute_score=None, reward_router_address=None, reward_model_tokenizer=None):
        super().__init__(config, tokenizer, compute_score)
        self.budget = span_options(config)["length_budget"]

    async def run_single(self, data) -> dict:
        data_item = data[-1:][0]  # multi-sequence outputs: score the last sequence, as verl's naive manager
        span = str(data_item.non_tensor_batch["reward_model"]["ground_truth"])
        response = await decode_response_off_loop(self.tokenizer, data_item)
        result = span_reward(response, span, prompt_text(data_item, self.tokenizer))
        info = score_info(result, span)
        score = await budgeted(self.budget, result.score, info, response, PRED_OPEN, self.tokenizer, data_item)
        return {"reward_score": score, "reward_extra_info": info}
