"""The unbiased pass@k estimator against exact binomials and against sampling from first principles."""

import itertools
import random
from math import comb

import pytest

from rlpt_verl.eval.passk import avg_at_n, mean_pass_at_k, pass_at_k


@pytest.mark.parametrize(
    "n, c, k", [(n, c, k) for n in (1, 4, 8, 64) for c in range(0, n + 1, max(1, n // 8)) for k in (1, 2, 8) if k <= n]
)
def test_equals_one_minus_binomial_ratio(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k), abs=1e-12)


def test_equals_the_share_of_k_subsets_with_a_correct_sample():
    """By definition: over all C(n, k) subsets of the n samples, the share holding at least one correct."""
    samples = [True, False, False, True, False, False]
    subsets = list(itertools.combinations(samples, 3))
    assert pass_at_k(6, 2, 3) == pytest.approx(sum(any(s) for s in subsets) / len(subsets))


def test_hand_computed_values():
    assert pass_at_k(4, 1, 4) == 1.0  # verl's bootstrap best@4 reads 0.684 here
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert mean_pass_at_k([(4, 1), (4, 0)], 2) == pytest.approx(0.25)
    assert avg_at_n([(4, 2), (2, 2)]) == pytest.approx(0.75)


def test_monte_carlo_agrees():
    rng = random.Random(0)
    samples = [True] * 5 + [False] * 27
    hits = sum(any(rng.sample(samples, 8)) for _ in range(20000))
    assert pass_at_k(32, 5, 8) == pytest.approx(hits / 20000, abs=0.015)


@pytest.mark.parametrize("n, c, k, msg", [(4, 1, 5, "needs at least 5"), (4, 5, 1, "within 0..n"), (4, 1, 0, "k must")])
def test_bad_arguments_are_named(n, c, k, msg):
    with pytest.raises(ValueError, match=msg):
        pass_at_k(n, c, k)
