"""RPT's rule-based next-token reward (arXiv 2506.08007). Pure functions: no I/O, no verl, no tokenizer.

The ground truth arrives with the cumulative UTF-8 byte lengths of its tokens under the *policy's*
tokenizer (written by ``rlpt build-rpt``), so scoring never re-tokenises and a prediction earns 1 only
if it covers one or more whole tokens of the true continuation, byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

THINK_END = "</think>"
BOXED = "\\boxed{"


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` with matched braces, verbatim; None if there is none.

    Braces inside the box must balance (tokens may contain ``{`` or ``}``); a box nested in another
    belongs to the outer one's content.

    >>> last_boxed("a \\\\boxed{ x} then \\\\boxed{ para}")
    ' para'
    >>> last_boxed("\\\\boxed{\\\\frac{1}{2}}")
    '\\\\frac{1}{2}'
    >>> last_boxed("\\\\boxed{ unclosed") is None
    True
    """
    found, i = None, text.find(BOXED)
    while i != -1:
        depth, j = 1, i + len(BOXED)
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        if depth == 0:
            found = text[i + len(BOXED) : j - 1]
            i = text.find(BOXED, j)
        else:  # unclosed: a later box may still sit inside it, complete
            i = text.find(BOXED, i + len(BOXED))
    return found


def extract_prediction(response: str, require_think_end: bool = True) -> tuple[str | None, str]:
    """(prediction, problem): the last boxed answer after the last ``</think>``.

    ``problem`` is "" on success, else ``no_think_end`` or ``no_boxed``.

    >>> extract_prediction("<think>maybe \\\\boxed{ a}</think> so \\\\boxed{ the}")
    (' the', '')
    >>> extract_prediction("no thinking \\\\boxed{ the}")
    (None, 'no_think_end')
    """
    if require_think_end:
        cut = response.rfind(THINK_END)
        if cut == -1:
            return None, "no_think_end"
        response = response[cut + len(THINK_END) :]
    prediction = last_boxed(response)
    return (None, "no_boxed") if prediction is None else (prediction, "")


@dataclass(frozen=True)
class RPTScore:
    score: float
    outcome: str  # "match", or why not: no_think_end, no_boxed, empty, mid_token, beyond_reference, mismatch
    prediction: str | None
    tokens_matched: int  # whole tokens the prediction covers (0 unless it scores)

    OUTCOMES = ("match", "no_think_end", "no_boxed", "empty", "mid_token", "beyond_reference", "mismatch")


def byte_prefix_reward(prediction: str, continuation: str, token_byte_ends: Sequence[int]) -> tuple[float, str, int]:
    """1 iff ``prediction``'s bytes are a prefix of ``continuation``'s ending at a token boundary.

    ``token_byte_ends[k]`` is the UTF-8 byte length of the continuation's first k+1 tokens.

    >>> byte_prefix_reward(" the", " the cat", [4, 8])
    (1.0, 'match', 1)
    >>> byte_prefix_reward(" th", " the cat", [4, 8])
    (0.0, 'mid_token', 0)
    >>> byte_prefix_reward("the", " the cat", [4, 8])
    (0.0, 'mismatch', 0)
    """
    pred, truth = prediction.encode("utf-8"), continuation.encode("utf-8")
    n = len(pred)
    if n == 0:
        return 0.0, "empty", 0
    if truth[:n] != pred:
        covered = n > len(truth) and pred.startswith(truth) and bool(truth)
        return 0.0, ("beyond_reference" if covered else "mismatch"), 0
    ends = list(token_byte_ends)
    if n in ends:
        return 1.0, "match", ends.index(n) + 1
    return 0.0, "mid_token", 0


def rpt_reward(
    response: str, continuation: str, token_byte_ends: Sequence[int], require_think_end: bool = True
) -> RPTScore:
    """The RPT reward of one response (arXiv 2506.08007).

    >>> r = rpt_reward("<think>It is a pet.</think> \\\\boxed{ cat}", " cat sat", [4, 8])
    >>> r.score, r.outcome, r.tokens_matched
    (1.0, 'match', 1)
    >>> rpt_reward("<think>x</think> \\\\boxed{ ca}", " cat sat", [4, 8]).outcome
    'mid_token'
    """
    prediction, problem = extract_prediction(response, require_think_end)
    if prediction is None:
        return RPTScore(0.0, problem, None, 0)
    score, outcome, tokens = byte_prefix_reward(prediction, continuation, token_byte_ends)
    return RPTScore(score, outcome, prediction, tokens)
