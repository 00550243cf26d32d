"""Multiple-choice extraction on the inline cases that trip common extractors."""

import pytest

from rlpt_verl.eval.choices import extract_choice, read_choice

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
    # the styles a reader sees at once (issue: multiple-choice extraction misses)
    ("\\boxed{\\text{(B) 25\\%}}", 4, "B"),
    ("\\[\\boxed{\\text{(C) 600 nm}}\\]", 4, "C"),
    ("\\boxed{\\textbf{(A)} \\frac{5}{8}}", 4, "A"),
    ('Answer: "C"', 4, "C"),
    ("The answer is for sure D, it can't be A or B", 4, "D"),
    ("D. it can't be A or B", 4, "D"),
    ("... therefore I think it's B", 4, "B"),
    ("Answer: Let's think step by step. Therefore, B.", 4, "B"),
    ("答案是 B", 4, "B"),
    ("经过分析，B。", 4, "B"),
    ("la réponse est C", 4, "C"),
    ("（Ｂ）", 4, "B"),  # full-width
    ("Answer: B\nExplanation: Choice A is incorrect", 4, "B"),  # a later mention does not override
    ("The answer is B. Option C is wrong", 4, "B"),
    ("Answer: I", 10, "I"),  # MMLU-Pro's ninth option, not the pronoun
    ("I think the answer is C", 10, "C"),  # the pronoun, not option I
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


def test_disagreeing_anchors_are_graded_by_the_last_and_flagged_ambiguous():
    c = read_choice("Answer: B ... on second thought \\boxed{D}", 4)
    assert (c.letter, c.ambiguous, c.rule) == ("D", True, "explicit")
    c = read_choice("The answer is B. B is the correct answer.", 4)
    assert (c.letter, c.ambiguous) == ("B", False)
    c = read_choice("so the answer is (C)", 4)
    assert (c.letter, c.ambiguous) == ("C", False)
