"""KOR-Bench answers (arXiv 2410.06526) scored as the authors' evaluation does, per category. Pure logic.

The authors' rules (their ``eval_utils``; rule set ``KOR_RULES``): the answer is the *first* ``[[...]]`` of
the reply (else ``$\\boxed{...}$``, else ``[...]``), after the reasoning (``</think>``) is dropped here;

- cipher, counterfactual and the rest of operation: the answer with quotes, spaces, newlines and inner
  brackets removed, wrapped in ``[[ ]]``, must equal the gold string exactly;
- logic: quotes, spaces, newlines and dots removed on both sides (rule 5: ``;``-separated parts, any order);
- operation: a gold with "or" compares the alternatives in any order; rules 23-25 compare the numbers in
  order, rule 18 the sorted characters, items 178/179 the sorted inequalities, and the items the authors
  list as symbolic compare as mathematics (their sympy ``parse_latex``; here Math-Verify, in its workers);
- puzzle: per rule (1: the letters, case-insensitive; 2: the letters are one of the listed answers; 3: the
  same words in any order; 4: the letters occur in the gold; 5: comma-separated parts in any order; 9: the
  same operators and the stated result; 10: the same numbers making 24; 18: equal without commas, spaces
  and brackets; others: equal in letters and digits). Arithmetic in rules 9 and 10 is evaluated by a small
  safe evaluator (numbers and + - * / only), never ``eval``.

A reply with no bracketed answer is ``no_answer``. Counterfactual items also report whether the reply gave
the *real-life* answer (``real_life_answer``), as the authors do.
"""

from __future__ import annotations

import ast
import operator
import re

from rlpt_verl.eval.math_check import after_reasoning

__all__ = ["kor_answer", "kor_grade", "KOR_RULES"]

KOR_RULES = "rlpt-kor-2: the KOR-Bench authors' eval_utils rules per category (first [[...]] of the reply)"
# operation items the authors compare as mathematics (their idx_ranges)
_SYMBOLIC = {18, 73, 74, 77, 94, 115, 116, 117, 121, 122, 123, 125, 131, 132, 134, 135, 136, 141, 143, 149,
             145, 146, 147, 151, 152, 153, 154, 155, 156, 160, 161, 162, 164, 165, 166, 170, 206, 209, 211,
             212, 213, 214, 215, 217, 218}  # fmt: skip


def kor_answer(response: str) -> str | None:
    """The first ``[[...]]`` content of the reply (else ``$\\boxed{}$``, else ``[...]``), or None.

    >>> kor_answer("first [[ 24 ]], then [[3]]"), kor_answer("<think>[[3]]</think> no brackets")
    ('24', None)
    """
    text = after_reasoning(response)
    found = (
        re.findall(r"\[\[\s*(.*?)\s*\]\]", text, re.S)
        or re.findall(r"\$\\boxed\{(.*?)\}\$", text, re.S)
        or re.findall(r"\[\s*(.*?)\s*\]", text, re.S)
    )
    return found[0].strip() if found else None


def _inner(text: str) -> str | None:
    m = re.search(r"\[\[(.*?)\]\]", after_reasoning(text), re.S)
    return m.group(1) if m else None


def _clean(s: str) -> str:
    return re.sub(r'["\n \[\]]', "", s)


def _logic(s: str) -> str:
    return re.sub(r'["\n .]', "", s)


def _latex(s: str) -> str:
    s = re.sub(r'["\n\[\]$]', "", s)
    if "=" in s:
        s = s.rsplit("=", 1)[1]
    s = re.sub(r"\\[()\[\]]", "", s)
    s = re.sub(r"\\text\{.*?\}", "", s)
    return re.sub(r"\\(?:left|right|displaystyle)", "", s).replace("\\\\", "\\")


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _arith(expr: str) -> float | None:
    """Numbers and + - * / (parentheses allowed), or None: model output is never given to ``eval``."""

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            v = walk(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        raise ValueError("not arithmetic")

    if len(expr) > 200:
        return None
    try:
        return float(walk(ast.parse(expr.strip(), mode="eval")))
    except (SyntaxError, ValueError, ZeroDivisionError, TypeError, RecursionError):
        return None


def _letters(s: str) -> str:
    return re.sub(r"[^A-Za-z]", "", s).lower()


def _puzzle(rule_id: str, said: str, gold: str) -> bool:
    if rule_id == "1":
        return _letters(said) == _letters(gold)
    if rule_id == "2":
        return _letters(said) in gold.split(",")
    if rule_id == "3":
        return sorted(w for w in re.split(r"\W+", said.lower()) if w) == sorted(gold.split(" "))
    if rule_id == "4":
        return _letters(said) in gold
    if rule_id == "5":
        return sorted(re.sub(r"\s+", "", said).split(",")) == sorted(gold.split(","))
    if rule_id in ("9", "10"):
        said = said.replace("×", "*").replace("−", "-")
        gold = gold.replace("×", "*").replace("−", "-")
        left = said.split("=")[0]
        if rule_id == "9":
            result = re.search(r"=\s*(-?\d+)", gold)
            same_ops = re.findall(r"[+\-*/]", left) == re.findall(r"[+\-*/]", gold.split("=")[0])
            value = _arith(left)
            return bool(result) and same_ops and value is not None and value == int(result.group(1))
        same_terms = sorted(re.sub(r"\W+", "", left)) == sorted(re.sub(r"\W+", "", gold.split("\n")[0].split("=")[0]))
        value = _arith(left)
        return same_terms and value is not None and abs(value - 24) < 1e-9
    if rule_id == "18":
        return re.sub(r"[,\s\[\]]+", "", said) == re.sub(r"[,\s\[\]]+", "", gold)
    return re.sub(r"\W+", "", said) == re.sub(r"\W+", "", gold)


def kor_grade(
    response: str, gold: str, category: str = "", rule_id: str = "", idx: str = ""
) -> tuple[str, tuple[str, str] | None]:
    """(verdict, Math-Verify job or None) under the authors' rule for ``category``: ``correct``/``wrong``/
    ``no_answer``, or ``math`` with the (reply, gold) pair for the items they compare symbolically.

    >>> kor_grade("so [[x = 2, y = 3]]", "[[x=2,y=3]]", "operation")[0], kor_grade("[[LOVE]]", "[[love]]", "cipher")[0]
    ('correct', 'wrong')
    >>> kor_grade("[[ -12 or 4 ]]", "[[4or-12]]", "operation")[0], kor_grade("none", "[[1]]", "cipher")[0]
    ('correct', 'no_answer')
    >>> kor_grade("[[3 + 3 * 7 = 24]]", "[[3+3*7=24]]", "puzzle", "10")[0]
    'correct'
    """
    said = kor_answer(response)
    if said is None:
        return "no_answer", None
    ok: bool
    if category == "logic":
        said_l = _logic(said)
        if rule_id == "5":  # the authors compare the cleaned reply with the raw gold, split on ";"
            ok = sorted(f"[[{said_l}]]".split(";")) == sorted(gold.split(";"))
        else:
            ok = said_l == _logic(kor_answer(gold) or gold)
    elif category == "operation" and idx in ("178", "179"):
        ineq = lambda s: sorted("".join(m) for m in re.findall(r"(≥|≤)\s*([-]?\d+\.?\d*)", s))  # noqa: E731
        ok = ineq(_clean(said)) == ineq(gold)
    elif category == "operation" and rule_id == "18":
        ok = "".join(sorted(re.sub(r"\W+", "", _clean(said)))) == "".join(
            sorted(re.sub(r"\W+", "", _inner(gold) or ""))
        )
    elif category == "operation" and rule_id in ("23", "24", "25"):
        ok = re.findall(r"\d+", _clean(said)) == re.findall(r"\d+", gold)
    elif category == "operation" and idx.isdigit() and int(idx) in _SYMBOLIC:
        a, b = _latex(said), _latex(kor_answer(gold) or gold)
        if a == b:
            return "correct", None
        parts = lambda s: ", ".join(p.strip() for p in s.split("or"))  # noqa: E731
        return (
            ("math", ("$\\boxed{" + parts(a) + "}$", parts(b))) if "or" in b else ("math", ("$\\boxed{" + a + "}$", b))
        )
    elif category == "operation" and "or" in gold:
        split = lambda s: sorted(x.strip() for x in s.strip("[]").split("or"))  # noqa: E731
        ok = split(_clean(re.sub(r"\\text\{or\}", "or", said))) == split(_clean(kor_answer(gold) or gold))
    elif category == "puzzle":
        inner_said, inner_gold = _inner(response), _inner(gold)
        if inner_said is None:
            return "no_answer", None
        ok = _puzzle(rule_id, inner_said, inner_gold or "")
    else:  # cipher, counterfactual, other operation items: the cleaned answer equals the gold string
        ok = f"[[{_clean(said)}]]" == gold.strip()
    return ("correct" if ok else "wrong"), None
