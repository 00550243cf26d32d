r"""The final answer of a text written with ``\boxed{}``: one rule for eval, for ``rlpt math-data`` and for docs.

Rule (``FINAL_BOX_RULE``): the final answer is the *last run* of boxes. Boxes separated only by whitespace,
punctuation, math delimiters (``$``, ``\(`` ``\)``, ``\[`` ``\]``), the words "and"/"or", a one-letter
``x =`` label, or a few words ending in "and" (``for part (a) and``, ``papers and``; no sentence end) form one
run, and together they are one answer, joined with ``", "`` (a set or tuple to
Math-Verify). A box followed by other text and then another box was an earlier attempt: only the later
run counts. So ``First \boxed{4}, final answer \boxed{3}.`` answers ``3`` (verl's MATH scorer, which trains
the RLVR stage, also takes the last box) and ``\(\boxed{1}\) and \(\boxed{-2}\)`` answers ``1, -2``. Pure logic.
"""

from __future__ import annotations

import re

__all__ = ["boxes", "final_boxed", "FINAL_BOX_RULE"]

FINAL_BOX_RULE = (
    "the last run of \\boxed{} (boxes separated only by spaces, punctuation, math delimiters, 'and'/'or', a "
    "one-letter 'x =' label or a few words ending in 'and' form one answer, joined with ', '); an earlier box "
    "followed by other text is ignored"
)
_OPEN = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BARE = re.compile(r"\\boxed +([^\s$]+)")  # verl also reads "\boxed 5"
_SEPARATOR = re.compile(
    r"^(?:[\s,;.:$]|\\[()\[\]]|\\quad|\\qquad|\\,|\\text\{\s*(?:and|or|,)\s*\}|\band\b|\bor\b"
    r"|\b[A-Za-z]\s*=)*$"
)


# A few words ending in "and" (then maybe math delimiters and a label such as "y_2 ="): the boxes are parts of
# one answer ("\boxed{(3, 3)} for part (a) and \boxed{(1, 1)}", "\boxed{1} papers and \boxed{2} bins"), not a
# correction, which names no "and" before its new box ("First \boxed{4}, final answer \boxed{3}").
_PARTS = re.compile(
    r"^(?=.{0,48}$)[^.!?]*?\band\b(?:\s*\})?(?:[\s$]|\\[()\[\]])*(?:[A-Za-z](?:_\{?\w+\}?)?\s*=\s*)?$", re.S
)


def boxes(text: str) -> list[tuple[int, int, str]]:
    r"""(start, end, content) of every ``\boxed{...}`` / ``\fbox{...}`` with balanced braces, in order.

    >>> [c for _, _, c in boxes(r"a \boxed{\frac{1}{2}} b \fbox{3} \boxed 7")]
    ['\\frac{1}{2}', '3', '7']
    >>> boxes(r"\boxed{unclosed")
    []
    """
    found = []
    pos = 0
    while True:
        m = _OPEN.search(text, pos)
        if m is None:
            break
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth:
            break
        found.append((m.start(), i, text[m.end() : i - 1].strip()))
        pos = i
    for m in _BARE.finditer(text):
        if not any(s <= m.start() < e for s, e, _ in found):
            found.append((m.start(), m.end(), m.group(1)))
    return sorted(found)


def final_boxed(text: str) -> str | None:
    r"""The final answer under ``FINAL_BOX_RULE``, or None when the text has no box.

    >>> final_boxed(r"First \boxed{4}, final answer \boxed{3}."), final_boxed(r"\boxed{1}\boxed{2}")
    ('3', '1, 2')
    >>> final_boxed(r"\(\boxed{1}\) and \(\boxed{-2}\)"), final_boxed(r"$x=\boxed{2}$, $y=\boxed{5}$")
    ('1, -2', '2, 5')
    >>> final_boxed(r"\boxed{(3, 3)} \text{ for part (a) and } \boxed{(1, 1)}")
    '(3, 3), (1, 1)'
    >>> final_boxed(r"\boxed{1} papers and \boxed{2} bins")
    '1, 2'
    >>> final_boxed(r"$y_1 = \boxed{a} \) and \( y_2 = \boxed{b}$"), final_boxed(r"\boxed{4}. No: the sum is \boxed{3}")
    ('a, b', '3')
    >>> final_boxed("no box") is None, final_boxed(r"\boxed{}") is None
    (True, True)
    """
    found = [b for b in boxes(text) if b[2]]
    if not found:
        return None
    run = [found[-1]]
    for prev in reversed(found[:-1]):
        between = text[prev[1] : run[0][0]]
        if not (_SEPARATOR.match(between) or _PARTS.match(between)):
            break
        run.insert(0, prev)
    return ", ".join(c for _, _, c in run)
