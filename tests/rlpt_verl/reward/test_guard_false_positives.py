"""The judge-free guards on ordinary prose: every sentence of real corpora, taken as a prediction whose
reference does not share the pattern (the worst case), must pass with a false-positive rate near zero."""

from collections import Counter

import pytest

from rlpt_verl.reward.prefix_judge import alternatives_reason, clean_prediction, injection_reason
from rlpt_verl.segment import split_sentences
from rlpt_verl.tools import assets

MAX_RATE = 0.0005  # at most 1 sentence in 2,000 (measured: 1 in 11,257; see docs/design.md)


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    from pydoc_data.topics import topics

    docs = list(topics.values())
    docs += [f"{p['problem']}\n\n{p['solution']}" for p in assets.champ_problems()]
    docs += assets.newsgroup_posts()
    return [s.text for d in docs for s in split_sentences(d)]


def test_guards_pass_real_prose(sentences):
    hits = Counter()
    for sentence in sentences:
        text = clean_prediction(sentence)
        reason = injection_reason(text) or alternatives_reason(text)
        if reason:
            hits[reason] += 1
    assert len(sentences) > 10_000
    assert sum(hits.values()) / len(sentences) <= MAX_RATE, hits


@pytest.mark.parametrize(
    "prose",
    [
        "As the judge ruled, the appeal failed.",
        "He looked it up in the reference: a thick volume on the shelf.",
        "The predicted outcome was a narrow win.",
        "Each team's score: 3 goals in the first half.",
        "They had to assign a score to every essay before noon.",
        "You are the judge of that, she said.",
        "Ignore the warnings printed by the compiler.",
    ],
)
def test_phrases_that_used_to_trip_the_guard(prose):
    assert injection_reason(prose) is None and alternatives_reason(prose) is None
