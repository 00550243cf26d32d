"""Per-task training metrics from one step's rows (verl 0.9.1 logs reward extra info only for validation). Pure.

Keys, for every ``data_source`` in the batch (``rlpt_asr``, ``rlpt_msr``, ``rpt``, ...)::

    train-task/<source>/samples                      rows of this task (padding rows excluded)
    train-task/<source>/reward/mean                  sequence reward (sum of rm_scores)
    train-task/<source>/acc/mean                     the manager's `acc`, when it reports one
    train-task/<source>/response_length/mean         response tokens
    train-task/<source>/format_error/rate            `format_error`, when reported
    train-task/<source>/judge_error/rate             `judge_error`, when reported (the `rlpt` judge)
    train-task/<source>/too_short/rate               `too_short`: predictions that stop short of s_i
    train-task/<source>/parse_failure/rate           `parse_failure`: judge replies without a verdict
    train-task/<source>/echo/rate, alternatives/rate, injection/rate    the other `rlpt` guards
    train-task/<source>/judge_calls_avoided/share    1 - mean(`judge_called`), when reported

so a blended reward can be told apart by task and a failing judge shows up at the step it fails.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

PREFIX = "train-task"


def _mean_of(infos: list[dict], name: str) -> float | None:
    values = [float(info[name]) for info in infos if info.get(name) is not None]
    return sum(values) / len(values) if values else None


def task_metrics(
    data_sources: Sequence[str],
    rewards: Sequence[float],
    response_lengths: Sequence[float],
    extra_infos: Sequence[Mapping | None],
    padding: Sequence[bool] | None = None,
) -> dict[str, float]:
    """Means per ``data_source`` of the step's rows.

    >>> m = task_metrics(["rlpt_asr", "rlpt_msr", "rlpt_asr"], [1.0, 0.0, 0.0], [10, 20, 30],
    ...                  [{"acc": 1.0, "judge_called": 0.0}, {"acc": 0.0, "judge_called": 1.0},
    ...                   {"acc": 0.0, "judge_called": 1.0}])
    >>> m["train-task/rlpt_asr/acc/mean"], m["train-task/rlpt_asr/judge_calls_avoided/share"]
    (0.5, 0.5)
    >>> m["train-task/rlpt_msr/response_length/mean"]
    20.0
    >>> task_metrics(["rlpt_asr"] * 2, [0.0, 1.0], [5, 9], [{"too_short": 1.0}, {"too_short": 0.0}])[
    ...     "train-task/rlpt_asr/too_short/rate"]
    0.5
    """
    n = len(data_sources)
    padding = list(padding) if padding is not None else [False] * n
    if not len(rewards) == len(response_lengths) == len(extra_infos) == len(padding) == n:
        raise ValueError("every per-row sequence must have one entry per row")
    groups: dict[str, list[int]] = defaultdict(list)
    for i, (source, pad) in enumerate(zip(data_sources, padding, strict=True)):
        if not pad:
            groups[str(source)].append(i)
    out: dict[str, float] = {}
    for source, rows in sorted(groups.items()):
        key = f"{PREFIX}/{source}"
        infos = [dict(extra_infos[i] or {}) for i in rows]

        out[f"{key}/samples"] = float(len(rows))
        out[f"{key}/reward/mean"] = sum(float(rewards[i]) for i in rows) / len(rows)
        out[f"{key}/response_length/mean"] = sum(float(response_lengths[i]) for i in rows) / len(rows)
        for name, metric in (
            ("acc", "acc/mean"),
            ("format_error", "format_error/rate"),
            ("judge_error", "judge_error/rate"),
            ("too_short", "too_short/rate"),
            ("parse_failure", "parse_failure/rate"),
            ("echo", "echo/rate"),
            ("alternatives", "alternatives/rate"),
            ("injection", "injection/rate"),
            # the optional reasoning-length budget (reward/length_budget.py): measured length, budget, kept share
            ("reasoning_tokens", "reasoning_tokens/mean"),
            ("length_budget", "length_budget/mean"),
            ("length_factor", "length_factor/mean"),
        ):
            value = _mean_of(infos, name)
            if value is not None:
                out[f"{key}/{metric}"] = value
        called = _mean_of(infos, "judge_called")
        if called is not None:
            out[f"{key}/judge_calls_avoided/share"] = 1.0 - called
    return out
