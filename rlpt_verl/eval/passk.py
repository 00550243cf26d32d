"""Unbiased pass@k (Chen et al. 2021, arXiv 2107.03374 §2.1), as the RLPT paper reports it. Pure logic.

verl's validation reports a bootstrap ``best@k`` that reads low (1 correct of 4 gives 0.684, not 1.0);
the papers use the unbiased estimator pass@k = E[1 − C(n−c, k) / C(n, k)] over problems.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["pass_at_k", "mean_pass_at_k", "avg_at_n"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n (c correct) is correct.

    Computed as 1 − ∏_{i=n−c+1}^{n} (1 − k/i), which equals 1 − C(n−c,k)/C(n,k) without huge binomials.

    >>> pass_at_k(4, 1, 4), pass_at_k(4, 1, 1), round(pass_at_k(64, 3, 8), 6)
    (1.0, 0.25, 0.334677)
    >>> pass_at_k(4, 0, 2)
    0.0
    >>> pass_at_k(4, 1, 5)
    Traceback (most recent call last):
    ...
    ValueError: pass@5 needs at least 5 samples per problem, got n=4
    """
    if not 0 <= c <= n:
        raise ValueError(f"correct count c={c} must be within 0..n={n}")
    if not 1 <= k:
        raise ValueError(f"k must be >= 1, got {k}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, got n={n}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def mean_pass_at_k(counts: Sequence[tuple[int, int]], k: int) -> float:
    """Mean of :func:`pass_at_k` over problems given as (n, c) pairs.

    >>> mean_pass_at_k([(4, 1), (4, 0), (4, 4)], 1)
    0.4166666666666667
    """
    if not counts:
        raise ValueError("no problems to average")
    return sum(pass_at_k(n, c, k) for n, c in counts) / len(counts)


def avg_at_n(counts: Sequence[tuple[int, int]]) -> float:
    """avg@n: the mean share of correct samples (equals pass@1 when every problem has the same n).

    >>> avg_at_n([(4, 1), (4, 3)])
    0.5
    """
    if not counts:
        raise ValueError("no problems to average")
    return sum(c / n for n, c in counts) / len(counts)
