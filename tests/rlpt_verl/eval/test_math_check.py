"""Math-Verify in worker processes: real answers of real problems, and a hung check that must not stall."""

import time

import pytest

from rlpt_verl.eval import math_check
from rlpt_verl.eval.math_check import check_math
from rlpt_verl.tools import assets


def test_real_answers_are_checked_as_math_not_as_strings():
    problems = {p["id"]: p for p in assets.champ_problems()}
    p = next(p for p in problems.values() if p["answer"] == "2^(n-1)")
    items = [
        ("boxed", "So the count is \\boxed{2^{n-1}}.", p["answer"]),
        ("equal", "The answer is $\\frac{2^n}{2}$.", p["answer"]),  # same value, other form
        ("wrong", "The answer is $2^n$.", p["answer"]),
        ("number", "Therefore the result is \\boxed{0.5}", "\\frac{1}{2}"),
        ("none", "I am not sure.", "239"),
    ]
    got = dict(check_math(items, workers=2, timeout_s=60))
    assert got == {"boxed": "correct", "equal": "correct", "wrong": "wrong", "number": "correct", "none": "no_answer"}


def _hang(response, gold):
    if response == "hang":
        time.sleep(3600)
    return "correct"


def test_a_hung_check_times_out_and_its_worker_is_replaced(monkeypatch):
    """Stub (named): a verification that never returns, which no real input is known to produce on demand."""
    monkeypatch.setattr(math_check, "verify_one", _hang)  # forked workers inherit the patch
    items = [("h1", "hang", "1"), ("a", "x", "1"), ("h2", "hang", "1"), ("b", "x", "1"), ("c", "x", "1")]
    t0 = time.monotonic()
    got = dict(check_math(items, workers=2, timeout_s=2))
    assert got == {"h1": "timeout", "h2": "timeout", "a": "correct", "b": "correct", "c": "correct"}
    assert time.monotonic() - t0 < 30  # two 2 s deadlines, not an hour


@pytest.mark.parametrize("workers", [1, 3])
def test_every_item_is_answered_once(workers):
    items = [(i, f"\\boxed{{{i}}}", str(i if i % 3 else i + 1)) for i in range(12)]
    got = list(check_math(items, workers=workers, timeout_s=60))
    assert sorted(k for k, _ in got) == list(range(12))
    assert {k for k, v in got if v == "wrong"} == {0, 3, 6, 9}


def test_the_final_answer_counts_and_boxes_of_one_answer_go_together():
    items = [
        ("corrected", "First \\boxed{4}, final answer \\boxed{3}.", "3"),  # verl's MATH scorer also gives 1
        ("corrected_wrong", "First \\boxed{3}, final answer \\boxed{4}.", "3"),
        ("set", "\\boxed{-2,1}", "1, -2"),  # the gold of "\\(\\boxed{1}\\) and \\(\\boxed{-2}\\)"
        ("two_boxes", "so \\boxed{1} and \\boxed{2}", "1, 2"),
        ("draft_in_reasoning", "<think>\\boxed{3}</think> I conclude \\boxed{5}.", "3"),
        ("unit", "v = \\boxed{2.5 \\text{ m/s}}", "2.5", {"unit": "m/s"}),
        ("tolerance", "\\boxed{3.05}", "3.0", {"tolerance": 0.1}),
        ("outside_tolerance", "\\boxed{3.5}", "3.0", {"tolerance": 0.1}),
    ]
    got = dict(check_math(items, workers=2, timeout_s=60))
    assert got == {"corrected": "correct", "corrected_wrong": "wrong", "set": "correct", "two_boxes": "correct",
                   "draft_in_reasoning": "wrong", "unit": "correct", "tolerance": "correct",
                   "outside_tolerance": "wrong"}  # fmt: skip


def test_percent_boxes_parts_of_one_answer_and_a_final_statement():
    """Styles Math-Verify's own published test suite holds (benchmarks/bench_mathverify_cases.py) that the
    graders missed: a percent sign in the box, boxes that are parts of one answer joined by "... and", and
    "The final answer is X" stated after an intermediate box."""
    items = [
        ("percent", "so \\boxed{20\\%}", "20"),
        ("percent_spaced", "so \\boxed{20 \\%}", "20\\%"),
        ("percent_wrong", "so \\boxed{25\\%}", "20"),
        ("parts", "$$\\boxed{(3, 3)} \\text{ for part (a) and } \\boxed{(1, 1)}$$", "(3, 3), (1, 1)"),
        ("labelled_parts", "\\(y_1 = \\boxed{2} \\) and \\( y_2 = \\boxed{5} \\)", "2, 5"),
        ("correction_still", "First \\boxed{4}. No: recounting, it is \\boxed{3}.", "3"),
        ("stated_last", "interest \\boxed{255}, so 10,200 + 255 = 10,455. The final answer is $10,455$.", "10455"),
        ("stated_last_wrong", "interest \\boxed{255}, so 10,455. The final answer is $10,455$.", "255"),
    ]
    got = dict(check_math(items, workers=1, timeout_s=60))
    assert got == {"percent": "correct", "percent_spaced": "correct", "percent_wrong": "wrong", "parts": "correct",
                   "labelled_parts": "correct", "correction_still": "correct", "stated_last": "correct",
                   "stated_last_wrong": "wrong"}  # fmt: skip
