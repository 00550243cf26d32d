"""RLPT sample construction (arXiv 2509.19249): D = {(s_<i, s_i, s_{i+1}) | i = 2..n-1}. Pure logic.

Token budgets are handled with per-segment token counts and prefix sums, so choosing how much
left context fits costs O(log n) per target instead of re-tokenising a growing context.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Sequence

from rlpt_verl.segment import Segment, join_segments

__all__ = ["eligible_targets", "sample_targets", "reference_text", "context_start", "doc_rng"]


def eligible_targets(segments: Sequence[Segment], min_target_chars: int) -> list[int]:
    """0-based indices j that may be targets: 1 <= j <= n-2 (paper's i = 2..n-1), long enough.

    Short segments stay in contexts and references; they are only never predicted.

    >>> segs = [Segment(t, " ") for t in ["First one.", "Ok.", "A long enough one.", "Last."]]
    >>> eligible_targets(segs, min_target_chars=5)
    [2]
    >>> eligible_targets(segs[:2], min_target_chars=1)
    []
    """
    return [j for j in range(1, len(segments) - 1) if len(segments[j].text) >= min_target_chars]


def doc_rng(seed: int, doc_key: str) -> random.Random:
    """A per-document RNG keyed by the document's text: the same document draws the same targets whatever
    the worker order, the file name or the folder it was read from."""
    digest = hashlib.blake2b(f"{seed}\x00{doc_key}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def sample_targets(targets: list[int], max_targets: int, rng: random.Random) -> list[int]:
    """Keep at most ``max_targets`` (0 = all), sampled without replacement, in document order.

    >>> sample_targets([1, 2, 3, 4], 2, random.Random(0))
    [2, 4]
    >>> sample_targets([1, 2], 0, random.Random(0))
    [1, 2]
    """
    if max_targets <= 0 or len(targets) <= max_targets:
        return list(targets)
    return sorted(rng.sample(targets, max_targets))


def reference_text(segments: Sequence[Segment], j: int, k: int) -> str:
    """Judge reference: s_j and the k-1 segments after it (fewer at the document's end).

    >>> reference_text([Segment("A.", ""), Segment("B.", " "), Segment("C.", " ")], 1, 3)
    'B. C.'
    """
    return join_segments(segments[j : j + max(1, k)])


def context_start(prefix: Sequence[int], j: int, budget: int) -> int | None:
    """Smallest start s < j with sum(tokens[s:j]) <= budget, or None if not even s_{j-1} fits.

    ``prefix[m]`` is the token count of segments[0:m] (``prefix[0] == 0``).

    >>> prefix = [0, 5, 9, 20]   # segment token counts 5, 4, 11
    >>> context_start(prefix, 3, 15), context_start(prefix, 3, 100), context_start(prefix, 3, 10)
    (1, 0, None)
    """
    start = bisect.bisect_left(prefix, prefix[j] - budget, 0, j)
    return start if start < j else None
