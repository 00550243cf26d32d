"""KOR-Bench answers in [[ ]]: the last pair counts, alternatives in any order, maths forms via Math-Verify."""

import pytest

from rlpt_verl.eval.kor import kor_answer, kor_grade
from rlpt_verl.eval.math_check import verify_one


@pytest.mark.parametrize(
    "reply, gold, verdict",
    [
        ("Thus [[24]].", "[[24]]", "correct"),
        ("First [[3]], no wait: [[24]]", "[[24]]", "correct"),  # the last pair is the answer
        ("[[24]] ... actually [[25]]", "[[24]]", "wrong"),
        ("[[ x = 2, y = 3 ]]", "[[x=2,y=3]]", "correct"),
        ("[[5or-25]]", "[[5or-25]]", "correct"),
        ("[[-25 or 5]]", "[[5or-25]]", "correct"),
        ("[[5]]", "[[5or-25]]", "wrong"),  # one of two answers is not the answer
        ("[[Love]]", "[[LOVE]]", "correct"),
        ("The answer is 24.", "[[24]]", "no_answer"),  # not in the authors' format
        ("<think>[[24]]</think>", "[[24]]", "no_answer"),  # only inside the reasoning
        ("[[A]]", "[[B]]", "wrong"),
    ],
)
def test_kor_verdicts(reply, gold, verdict):
    got, job = kor_grade(reply, gold)
    if got == "math":  # texts differ, both mathematical: Math-Verify decides (as `rlpt eval` does)
        got = verify_one(*job)
    assert got == verdict


def test_mathematical_answers_that_differ_as_text_go_to_math_verify():
    verdict, job = kor_grade("[[13/3]]", "[[\\frac{13}{3}]]")
    assert verdict == "math" and job == ("$\\boxed{13/3}$", "\\frac{13}{3}")
    assert kor_answer("[[1 2 3,4 5 6]]") == "1 2 3,4 5 6"
