"""Multiple-choice extraction on the inline cases that trip common extractors."""

import pytest

from rlpt_verl.eval.choices import extract_choice

VALID = [
    ("Answer: A", 4, "A"),
    ("the answer is (C)", 4, "C"),
    ("Therefore \\boxed{B}.", 4, "B"),
    ("\\boxed{\\text{D}}", 4, "D"),
    ("A is wrong, so the answer is D", 4, "D"),
    ("B", 4, "B"),
    ("(C)", 4, "C"),
    ("**Answer:** **B**", 4, "B"),
    ("The final answer is J.", 10, "J"),  # MMLU-Pro: ten options
    ("<think>Maybe the answer is A. No.</think>The answer is C", 4, "C"),  # reasoning stripped first
    ("long reasoning... </think> Answer: B", 4, "B"),  # a template that opens <think> in the prompt
    ("Option A is tempting but the correct option is B", 4, "B"),
    ("Let me check each.\nA) no\nB) yes\nThe answer is B.", 4, "B"),
    ("Answer: A\nWait, I made an error. Answer: C", 4, "C"),  # the last commitment counts
]
INVALID = [
    ("The answer is a number between 3 and 4.", 4),  # a lone article is not option A
    ("I think A and B are both plausible.", 4),  # no commitment
    ("The answer is E", 4),  # not one of four options
    ("", 4),
    ("Answer: 42", 4),
    ("ANSWER: BECAUSE", 4),  # a word, not a letter
    ("<think>The answer is A</think>", 4),  # only inside the reasoning
]


@pytest.mark.parametrize("response, n, want", VALID)
def test_commitments_are_read(response, n, want):
    assert extract_choice(response, n) == want


@pytest.mark.parametrize("response, n", INVALID)
def test_non_answers_are_unparsed_not_guessed(response, n):
    assert extract_choice(response, n) is None
