"""Labelled judge cases shaped like a GRPO batch, from built ASR rows (for `rlpt judge-eval`, tests, benchmarks).

Each reference gets ``n`` predictions, as the n rollouts of one prompt would: the true next sentence, the
same sentence reworded in form only (first letter's case changed and the final punctuation dropped, so not a
textual prefix: the judge must rule), one exact copy of the first (a duplicate in the batch), and sentences
taken from other references (label 0), long enough to pass the coverage guard. Labels hold by construction:
a sentence from another document is not a semantic prefix of this one.

Pure: rows in, cases out (the judge-eval JSON Lines schema).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from rlpt_verl.reward.prefix_judge import word_units


def _reworded(sentence: str) -> str:
    """The same words, first letter's case swapped, final punctuation dropped.

    >>> _reworded("The cat sat on the mat."), _reworded("quick.")
    ('the cat sat on the mat', 'Quick')
    """
    text = sentence.strip().rstrip(".!?;:")
    return text[:1].swapcase() + text[1:] if text else text


def grpo_cases(rows: Sequence[dict], n: int = 8, seed: int = 0, references: int | None = None) -> list[dict]:
    """``n`` labelled predictions for each of the first ``references`` rows (all by default) with a target.

    ``rows`` are ASR rows of ``rlpt build`` (``reward_model.ground_truth``, ``extra_info.target``). Same rows
    and seed, same cases.

    >>> rows = [{"reward_model": {"ground_truth": f"Sentence {i} is here. More."},
    ...          "extra_info": {"target": f"Sentence {i} is here."}} for i in range(5)]
    >>> cases = grpo_cases(rows, n=5, references=2)
    >>> [c["label"] for c in cases[:5]], cases[1]["prediction"], len(cases)
    ([1, 1, 1, 0, 0], 'sentence 0 is here', 10)
    """
    if n < 3:
        raise ValueError("n must be >= 3 (the true sentence, its rewording, a duplicate, then others)")
    usable = [r for r in rows if (r.get("extra_info") or {}).get("target")]
    rng = random.Random(seed)
    cases = []
    for i, row in enumerate(usable[: references or len(usable)]):
        reference, target = str(row["reward_model"]["ground_truth"]), str(row["extra_info"]["target"])
        words = len(word_units(target))  # as the coverage guard counts: each other sentence passes it
        others = [str(r["extra_info"]["target"]) for j, r in enumerate(usable) if j != i]
        others = [o for o in others if 0.8 * words <= len(word_units(o)) <= 2 * words and o not in reference]
        rng.shuffle(others)
        if len(others) < n - 3:
            continue  # too few sentences of a similar length to be other rollouts of this prompt
        predictions = [(target, 1), (_reworded(target), 1), (target, 1)] + [(o, 0) for o in others[: n - 3]]
        for prediction, label in predictions:
            cases.append({"reference": reference, "target": target, "prediction": prediction, "label": label})
    return cases
