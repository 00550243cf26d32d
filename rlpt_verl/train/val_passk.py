"""Unbiased pass@k as a validation metric, per data source, next to verl's own (RLPT arXiv 2509.19249 §4).

verl 0.9.1's validation reports ``best@k``, a bootstrap estimate that reads low (1 correct of 4 samples
gives best@4 ≈ 0.68); the papers plot the unbiased pass@k. A sample counts as solved when its ``acc``
(or, without one, its reward) is above 0.5 — the 0/1 rewards of MATH, ``rlpt`` and ``rpt``. Pure logic.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from rlpt_verl.eval.passk import pass_at_k

__all__ = ["pass_at_k_metrics", "default_ks"]


def default_ks(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself.

    >>> default_ks(8), default_ks(6), default_ks(1)
    ([1, 2, 4, 8], [1, 2, 4, 6], [1])
    """
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    return ks + [n]


def pass_at_k_metrics(
    data_sources: Sequence[str],
    uids: Sequence[str],
    values: Sequence[float],
    var: str = "acc",
    expected: Mapping[tuple[str, str], int] | None = None,
) -> dict[str, float]:
    """``val-core/{source}/{var}/pass@{k}`` for k in :func:`default_ks` of the smallest group size.

    ``expected`` is verl's ``expected_acc_counts`` (samples asked per (data source, uid)): a sample that never
    came back (its rollout or reward raised) counts as unsolved, as verl's ``mean@N`` counts it as 0, so both
    read the same denominators. Only sources that have values are padded, as verl does.

    >>> m = pass_at_k_metrics(["d"] * 4, ["u"] * 4, [1, 0, 0, 0])
    >>> m["val-core/d/acc/pass@1"], m["val-core/d/acc/pass@4"]
    (0.25, 1.0)
    >>> padded = pass_at_k_metrics(["d"] * 2, ["u"] * 2, [1, 1], expected={("d", "u"): 4, ("d", "v"): 4})
    >>> padded["val-core/d/acc/pass@1"]  # u: 2 of 4 solved, v: every sample missing
    0.25
    """
    groups: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for source, uid, value in zip(data_sources, uids, values, strict=True):
        groups[str(source)][str(uid)].append(float(value) > 0.5)
    for (source, uid), count in (expected or {}).items():
        if str(source) in groups:
            solved = groups[str(source)][str(uid)]
            solved.extend([False] * max(0, int(count) - len(solved)))
    metrics: dict[str, float] = {}
    for source, by_uid in groups.items():
        counts = [(len(v), sum(v)) for v in by_uid.values()]
        n = min(n for n, _ in counts)
        for k in default_ks(n):
            metrics[f"val-core/{source}/{var}/pass@{k}"] = sum(pass_at_k(n_, c, k) for n_, c in counts) / len(counts)
    return metrics
