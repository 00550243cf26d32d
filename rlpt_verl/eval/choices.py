"""Multiple-choice answer extraction for MMLU-style benchmarks. Pure logic.

Common extractors take the first capital letter or the first "A"–"J" token, so "A is wrong, so the
answer is D" scores A, and a lone article ("a number") scores A. Here the reasoning is stripped first
(``<think>…</think>``), then anchored patterns are tried, strongest first, each taking its *last*
match: ``\\boxed{X}``, "answer is/answer: X", a reply that is only the letter, a final line "X)"/"(X)".
Letters must be upper case, stand alone, and be among the item's options; anything else is
``None`` (counted as ``unparsed`` per benchmark, never guessed).
"""

from __future__ import annotations

import re

__all__ = ["extract_choice", "letters"]

_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
_UNCLOSED_THINK = re.compile(r"^.*</think>", re.S | re.I)
_L = r"\(?\[?\**([A-Z])\**\]?\)?"  # a letter, optionally in (), [] or **bold**
_NOT_WORD = r"(?![A-Za-z0-9])"
PATTERNS = [
    re.compile(r"\\boxed\{\s*(?:\\text\{\s*)?" + _L + r"\s*\}?\s*\}"),
    re.compile(r"(?i:answer|option|choice)[\s*]*(?i:is|would be|:)?[\s*]*(?i:therefore\s*)?:?[\s*]*" + _L + _NOT_WORD),
    re.compile(r"^\s*" + _L + r"\s*[.:)]?\s*$"),
    re.compile(r"(?:^|\n)\s*" + r"\(?([A-Z])\)" + r"[ \t]", re.M),
]


def letters(n_choices: int) -> str:
    """The option letters of an item with ``n_choices`` options (MMLU 4, MMLU-Pro up to 10).

    >>> letters(4)
    'ABCD'
    """
    if not 1 <= n_choices <= 26:
        raise ValueError(f"an item needs 1..26 options, got {n_choices}")
    return "".join(chr(ord("A") + i) for i in range(n_choices))


def extract_choice(response: str, n_choices: int = 4) -> str | None:
    """The option letter ``response`` commits to, or None.

    >>> [extract_choice(r) for r in ("Answer: A", "the answer is (C)", "so \\\\boxed{B}", "A is wrong: answer D")]
    ['A', 'C', 'B', 'D']
    >>> extract_choice("The answer is a number."), extract_choice("The answer is E", 4), extract_choice("B")
    (None, None, 'B')
    """
    valid = letters(n_choices)
    text = _THINK.sub(" ", response)
    if "</think>" in text.lower():
        text = _UNCLOSED_THINK.sub(" ", text)
    for pattern in PATTERNS:
        found = [m.group(1) for m in pattern.finditer(text)]
        if found:
            # the strongest pattern that matched decides: a later, weaker match never overrides it
            return found[-1] if found[-1] in valid else None
    return None
