"""KOR-Bench answers in [[ ]] under the authors' per-category rules (arXiv 2410.06526, their eval_utils)."""

import pytest

from rlpt_verl.eval.kor import _arith, kor_answer, kor_grade
from rlpt_verl.eval.math_check import verify_one


@pytest.mark.parametrize(
    "reply, gold, category, rule_id, idx, verdict",
    [
        ("Thus [[24]].", "[[24]]", "operation", "1", "1", "correct"),
        ("First [[24]], then I doubt it: [[25]]", "[[24]]", "operation", "1", "1", "correct"),  # the first counts
        ("[[ x = 2, y = 3 ]]", "[[x=2,y=3]]", "operation", "2", "19", "correct"),
        ("[[-25 or 5]]", "[[5or-25]]", "operation", "2", "16", "correct"),  # alternatives in any order
        ("[[5]]", "[[5or-25]]", "operation", "2", "16", "wrong"),  # one of two answers is not the answer
        ("[[LOVE]]", "[[LOVE]]", "cipher", "1", "1", "correct"),
        ("[[Love]]", "[[LOVE]]", "cipher", "1", "1", "wrong"),  # exact, as the authors compare
        ("[[A.]]", "[[A]]", "logic", "1", "1", "correct"),  # logic drops dots and spaces
        ("[[b;a]]", "[[a;b]]", "logic", "5", "1", "wrong"),  # rule 5: parts in any order, brackets kept
        ("[[a;b]]", "[[a;b]]", "logic", "5", "1", "correct"),
        ("[[Apple Pie]]", "[[apple pie]]", "puzzle", "1", "1", "correct"),  # puzzle rule 1: letters only
        ("[[1,3,2]]", "[[3,2,1]]", "puzzle", "5", "1", "correct"),
        ("[[(8-3)*4+4=24]]", "[[8*4-(3+4)=24]]", "puzzle", "10", "1", "correct"),  # another way to 24, same numbers
        ("[[8*3=24]]", "[[8*4-(3+4)=24]]", "puzzle", "10", "1", "wrong"),  # 24, but not from the given numbers
        ("The answer is 24.", "[[24]]", "operation", "1", "1", "no_answer"),
        ("<think>[[24]]</think>", "[[24]]", "operation", "1", "1", "no_answer"),  # only inside the reasoning
        ("[[\\frac{13}{3}]]", "[[13/3]]", "operation", "3", "26", "wrong"),  # not symbolic: text compare
        ("[[\\frac{13}{3}]]", "[[13/3]]", "operation", "3", "18", "correct"),  # a symbolic item: maths
    ],
)
def test_kor_verdicts(reply, gold, category, rule_id, idx, verdict):
    got, job = kor_grade(reply, gold, category, rule_id, idx)
    if got == "math":  # the authors compare these as mathematics: Math-Verify decides (as `rlpt eval` does)
        got = verify_one(*job)
    assert got == verdict


def test_arithmetic_of_a_reply_is_never_evaluated_as_python():
    assert _arith("(8-3)*4+4") == 24.0 and _arith("3/0") is None
    assert _arith("__import__('os').system('true')") is None and _arith("2**999999") is None
    assert kor_answer("[[1 2 3,4 5 6]]") == "1 2 3,4 5 6"
