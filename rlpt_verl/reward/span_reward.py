"""The masked-span reward: exact match after a documented normalisation. Pure: no I/O, no verl.

A judge-free control for RLPT (the random-masking baseline of PretrainZero, arXiv 2512.03442): the policy
fills a ``<MASK>`` of a few words (``rlpt build-span``) and earns 1 only when its prediction, between the
RLPT prediction tags, equals the masked words after :func:`normalize_span`. Exact match is itself the main
guard: a longer answer, the whole sentence, the context echoed, or several candidates cannot equal the span.
As in the `rlpt` reward, candidates listed as alternatives (``alternatives``) and a prediction that mostly
repeats the material it was shown (``echo``) are also named.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .prefix_judge import alternatives_reason, clean_prediction, echo_share, extract_prediction, is_contentless

__all__ = ["normalize_span", "SpanScore", "span_reward"]

_WS = re.compile(r"\s+")


def normalize_span(text: str) -> str:
    """What two spans must share to match: NFKC, invisible format characters removed, case folded, every
    punctuation character replaced by a space, whitespace collapsed.

    Punctuation becomes a space (not nothing), so ``3.5`` stays distinct from ``35`` and ``don't`` from
    ``dont``; quotes, brackets and a final period do not matter.

    >>> normalize_span("  The  CAT's\\u200b mat. "), normalize_span("the cat s mat")
    ('the cat s mat', 'the cat s mat')
    >>> normalize_span("3.5") == normalize_span("35"), normalize_span("«Straße»")
    (False, 'strasse')
    """
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf").casefold()
    text = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text)
    return _WS.sub(" ", text).strip()


@dataclass(frozen=True)
class SpanScore:
    score: float
    outcome: str  # match, format_error, alternatives, echo, mismatch
    prediction: str | None


def span_reward(response: str, span: str, material: str = "") -> SpanScore:
    """1 when the last tagged prediction equals ``span`` after :func:`normalize_span`, else 0 with the reason.

    ``material`` (the text the policy was shown) lets a list that the material itself contains pass the
    alternatives check, as in the `rlpt` reward.

    >>> tag = lambda p: f"<|startofprediction|>{p}<|endofprediction|>"
    >>> [span_reward(tag(p), "sat on").outcome for p in ("Sat  on", "sat on the", "sat", "", "sat on or lay on")]
    ['match', 'mismatch', 'mismatch', 'format_error', 'mismatch']
    >>> span_reward("sat on", "sat on").outcome, span_reward(tag("sat on. Alternatively, lay on."), "sat on").outcome
    ('format_error', 'alternatives')
    """
    prediction = extract_prediction(response)
    if prediction is None or is_contentless(prediction):
        return SpanScore(0.0, "format_error", prediction)
    prediction = clean_prediction(prediction)
    if alternatives_reason(prediction, material):
        return SpanScore(0.0, "alternatives", prediction)
    if normalize_span(prediction) == normalize_span(span) and normalize_span(span):
        return SpanScore(1.0, "match", prediction)
    if material and echo_share(prediction, material, span) > 0.5:  # mostly text it was shown: named, still 0
        return SpanScore(0.0, "echo", prediction)
    return SpanScore(0.0, "mismatch", prediction)
