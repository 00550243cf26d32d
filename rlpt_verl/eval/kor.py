"""KOR-Bench answers (arXiv 2410.06526): the reply's last ``[[ ]]`` against the gold ``[[ ]]``. Pure logic.

The authors ask for every answer in double square brackets and score each of the five categories
(operation, logic, cipher, puzzle, counterfactual) by accuracy, the overall score over all items. Rule
``KOR_RULES``: the reply's reasoning is dropped (``</think>``), its *last* ``[[...]]`` is the answer (none:
``no_answer``); both sides are compared after normalising spaces, case, quotes and ``$``; alternatives joined
by "or" (``[[4or-12]]``) match in any order; an answer that is not equal as text but is mathematical (digits,
fractions, roots) goes to Math-Verify as a set, so ``[[-12 or 4]]`` and ``[[0.5]]`` against ``[[1/2]]`` count.
"""

from __future__ import annotations

import re

__all__ = ["kor_answer", "kor_grade", "KOR_RULES"]

KOR_RULES = "rlpt-kor-1: last [[...]] of the reply; normalised text, 'or' alternatives unordered, else Math-Verify"
_BRACKETS = re.compile(r"\[\[(.*?)\]\](?!\])", re.S)
_MATHY = re.compile(r"^[\d\s+\-*/^().,=xyz]*(?:\\sqrt\{?[\d.]+\}?[\d\s+\-*/^().,]*)*$|^[-\d./\\{}a-z ,=]+$")


def kor_answer(response: str) -> str | None:
    """The reply's last ``[[...]]`` content, or None.

    >>> kor_answer("first [[1]], then [[ 24 ]]"), kor_answer("<think>[[3]]</think> no brackets")
    ('24', None)
    """
    if "</think>" in response.lower():
        response = re.sub(r"^.*</think>", "", response, flags=re.S | re.I)
    found = _BRACKETS.findall(response)
    return found[-1].strip() if found else None


def _norm(text: str) -> str:
    text = text.strip().strip("$").strip().strip("\"'“”‘’`").lower()
    text = re.sub(r"\s+", " ", text)
    return re.sub(r"\s*([,;:=])\s*", r"\1", text)


def _alternatives(text: str) -> list[str]:
    return sorted(p for p in (x.strip() for x in re.split(r"\s*\bor\b\s*|(?<=\d)or(?=[-\d\\])", text)) if p)


def kor_grade(response: str, gold: str) -> tuple[str, tuple[str, str] | None]:
    """(verdict, Math-Verify job or None): ``correct``/``wrong``/``no_answer`` decided here, or ``math`` with the
    (response, gold) pair to verify when the texts differ but both are mathematical.

    >>> kor_grade("so [[4or-12]]", "[[4or-12]]")[0], kor_grade("[[ -12 or 4 ]]", "[[4or-12]]")[0]
    ('correct', 'correct')
    >>> kor_grade("[[LOVE]]", "[[love]]")[0], kor_grade("[[HATE]]", "[[LOVE]]")[0], kor_grade("none", "[[1]]")[0]
    ('correct', 'wrong', 'no_answer')
    >>> kor_grade("[[0.5]]", "[[1/2]]")
    ('math', ('$\\\\boxed{0.5}$', '1/2'))
    """
    said = kor_answer(response)
    if said is None:
        return "no_answer", None
    want = kor_answer(gold)
    want = gold.strip() if want is None else want
    a, b = _norm(said), _norm(want)
    if a == b or _alternatives(a) == _alternatives(b):
        return "correct", None
    if _MATHY.match(a) and _MATHY.match(b) and re.search(r"\d", a) and re.search(r"\d", b):
        joined_a, joined_b = ", ".join(_alternatives(a)), ", ".join(_alternatives(b))
        return "math", ("$\\boxed{" + joined_a + "}$", joined_b)
    return "wrong", None
