"""What the generative judge cost in one training step (or one `rlpt judge-eval` run). Pure.

The judge is what RLPT costs beyond ordinary RLVR, so each step logs, from the `rlpt` manager's per-sample
reward extra info (verl's logger, prefix ``rlpt/judge/``)::

    samples                  samples the rlpt manager scored (padding rows excluded)
    calls, requests          samples that asked the judge; HTTP requests sent (retries and re-asks included)
    avoided/<reason>         samples with a verdict and no call of their own, by the first reason that applies:
                             format (no prediction tags), guards (too long, injection, alternatives, echo, too
                             short), shortcut (a textual prefix), duplicate (an identical call in flight), cache
    avoided_share            avoided / samples
    prompt_tokens, completion_tokens, tokens_per_call
                             from the server's `usage`; tokens_estimated = 1 when some server gave none (then
                             4 characters per token)
    seconds                  sample-seconds spent waiting on the judge (summed over samples, which overlap)
    seconds_per_call         seconds / calls
    share_of_reward_time     seconds / the sample-seconds the manager spent on these samples

Counts are summed over the step's samples; a step without `rlpt` rows logs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

PREFIX = "rlpt/judge"
GUARDS = ("too_long", "injection", "alternatives", "echo", "too_short")
AVOIDED = ("format", "guards", "shortcut", "duplicate", "cache")


def avoided_reason(info: Mapping) -> str | None:
    """Why a sample needed no judge call of its own (None: it called the judge, or has no verdict).

    >>> avoided_reason({"format_error": 1.0}), avoided_reason({"echo": 1.0}), avoided_reason({"shortcut": 1.0})
    ('format', 'guards', 'shortcut')
    >>> avoided_reason({"cache_hit": 1.0, "judge_shared": 1.0}), avoided_reason({"cache_hit": 1.0})
    ('duplicate', 'cache')
    >>> avoided_reason({"judge_called": 1.0}), avoided_reason({"cache_hit": 1.0, "judge_error": 1.0}) is None
    (None, True)
    """
    if info.get("judge_called") or info.get("judge_error") or info.get("parse_failure"):
        return None
    if info.get("format_error"):
        return "format"
    if any(info.get(g) for g in GUARDS):
        return "guards"
    if info.get("shortcut"):
        return "shortcut"
    if info.get("cache_hit"):
        return "duplicate" if info.get("judge_shared") else "cache"
    return None


def judge_cost_metrics(extra_infos: Sequence[Mapping | None], padding: Sequence[bool] | None = None) -> dict:
    """The step's judge cost (see the module docstring) from per-sample reward extra info.

    >>> infos = [{"judge_called": 1.0, "judge_requests": 1.0, "judge_prompt_tokens": 300.0,
    ...           "judge_completion_tokens": 3.0, "judge_seconds": 2.0, "reward_seconds": 2.5},
    ...          {"shortcut": 1.0, "judge_called": 0.0, "reward_seconds": 0.5},
    ...          {"format_error": 1.0, "judge_called": 0.0, "reward_seconds": 0.0}]
    >>> m = judge_cost_metrics(infos)
    >>> m["rlpt/judge/calls"], m["rlpt/judge/avoided/shortcut"], m["rlpt/judge/avoided_share"]
    (1.0, 1.0, 0.6666666666666666)
    >>> m["rlpt/judge/tokens_per_call"], m["rlpt/judge/share_of_reward_time"]
    (303.0, 0.6666666666666666)
    >>> judge_cost_metrics([{"acc": 1.0}])  # not the rlpt manager's rows
    {}
    """
    padding = list(padding) if padding is not None else [False] * len(extra_infos)
    rows = [dict(i) for i, pad in zip(extra_infos, padding, strict=True) if i and not pad and "judge_called" in i]
    if not rows:
        return {}

    def total(name: str) -> float:
        return float(sum(float(r.get(name) or 0.0) for r in rows))

    calls = total("judge_called")
    reasons = [avoided_reason(r) for r in rows]
    out = {
        f"{PREFIX}/samples": float(len(rows)),
        f"{PREFIX}/calls": calls,
        f"{PREFIX}/requests": total("judge_requests"),
        **{f"{PREFIX}/avoided/{k}": float(reasons.count(k)) for k in AVOIDED},
        f"{PREFIX}/avoided_share": sum(r is not None for r in reasons) / len(rows),
        f"{PREFIX}/prompt_tokens": total("judge_prompt_tokens"),
        f"{PREFIX}/completion_tokens": total("judge_completion_tokens"),
        f"{PREFIX}/tokens_estimated": float(any(r.get("judge_tokens_estimated") for r in rows)),
        f"{PREFIX}/seconds": total("judge_seconds"),
    }
    tokens = out[f"{PREFIX}/prompt_tokens"] + out[f"{PREFIX}/completion_tokens"]
    out[f"{PREFIX}/tokens_per_call"] = tokens / calls if calls else 0.0
    out[f"{PREFIX}/seconds_per_call"] = out[f"{PREFIX}/seconds"] / calls if calls else 0.0
    reward = total("reward_seconds")
    out[f"{PREFIX}/share_of_reward_time"] = out[f"{PREFIX}/seconds"] / reward if reward else 0.0
    return out
