"""The RPT reward (SPEC §3) on inline cases, with token boundaries from a real tokenizer (SmolLM2)."""

import pytest

from rlpt_verl.reward.rpt_reward import byte_prefix_reward, extract_prediction, last_boxed, rpt_reward
from rlpt_verl.tasks.prompt_meter import load_tokenizer
from rlpt_verl.tasks.rpt import _ends


@pytest.fixture(scope="module")
def tok(tokenizer_dir):
    return load_tokenizer(tokenizer_dir)


def truth(tok, text: str, context: str):
    """(continuation, token_byte_ends) after ``context``, from the tokenizer's own tokenization of ``text``."""
    assert text.startswith(context)
    char = len(context)
    ends = _ends(tok, text)
    assert char in ends, "the test's context must end on a token boundary"
    return text[char:], [len(text[char:e].encode()) for e in ends if e > char]


def answer(prediction: str, thought: str = "Thinking about it.") -> str:
    return f"<think>{thought}</think> The next token is \\boxed{{{prediction}}}."


TEXT = "The cat sat on the mat, and the café served crème brûlée to everyone."


@pytest.mark.parametrize(
    ("prediction", "score", "outcome", "tokens"),
    [
        (" sat", 1.0, "match", 1),  # single token, with its leading space
        (" sat on the", 1.0, "match", 3),  # several whole tokens
        ("sat", 0.0, "mismatch", 0),  # the leading space is part of the token
        (" sa", 0.0, "mid_token", 0),  # a byte prefix that ends inside a token
        (" sat on th", 0.0, "mid_token", 0),
        (" Sat", 0.0, "mismatch", 0),
        ("", 0.0, "empty", 0),
    ],
)
def test_single_and_multi_token_prefixes(tok, prediction, score, outcome, tokens):
    cont, ends = truth(tok, TEXT, "The cat")
    r = rpt_reward(answer(prediction), cont, ends)
    assert (r.score, r.outcome, r.tokens_matched) == (score, outcome, tokens)


def test_unicode_continuations_count_bytes_not_characters(tok):
    cont, ends = truth(tok, TEXT, "The cat sat on the mat, and the")
    assert cont.startswith(" café")
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    # the tokenizer splits "café" so that a whole-token prefix ends inside the word; find one that ends on é
    full = [cont.encode()[:e].decode("utf-8", "replace") for e in ends]
    assert " café" in full, f"expected a boundary after é, got {full[:4]} ({ids[:12]})"
    assert rpt_reward(answer(" café"), cont, ends).score == 1.0
    assert rpt_reward(answer(" cafe"), cont, ends).outcome == "mismatch"  # é is 2 bytes, e is 1
    # every whole-token prefix scores 1, every other strict byte prefix that is valid UTF-8 scores 0
    b = cont.encode()
    for n in range(1, ends[4] + 1):
        try:
            pred = b[:n].decode()
        except UnicodeDecodeError:
            continue  # no string has these bytes: a prediction cannot end inside a character
        expected = 1.0 if n in ends else 0.0
        assert rpt_reward(answer(pred), cont, ends).score == expected, (n, pred)


def test_answer_extraction_rules():
    cont, ends = " x", [2]
    # the last box after </think>; boxes inside the thought do not count
    assert rpt_reward("<think>\\boxed{ x}</think>\\boxed{ y}", cont, ends).score == 0.0
    assert rpt_reward("<think>\\boxed{ y}</think>\\boxed{ y} no, \\boxed{ x}", cont, ends).score == 1.0
    # missing </think>: format failure, scored 0 even if the box is right
    r = rpt_reward("\\boxed{ x}", cont, ends)
    assert (r.score, r.outcome) == (0.0, "no_think_end")
    assert rpt_reward("\\boxed{ x}", cont, ends, require_think_end=False).score == 1.0
    # no box, or a box never closed
    assert rpt_reward("<think>a</think> x", cont, ends).outcome == "no_boxed"
    assert rpt_reward("<think>a</think> \\boxed{ x", cont, ends).outcome == "no_boxed"
    # nested braces are part of the content; the content is verbatim (spaces kept)
    assert last_boxed("\\boxed{\\frac{a}{b}}") == "\\frac{a}{b}"
    assert last_boxed("\\boxed{ {a} } and \\boxed{b}") == "b"
    assert last_boxed("\\boxed{ outer \\boxed{inner} }") == " outer \\boxed{inner} "
    assert extract_prediction("<think></think>\\boxed{  two spaces}") == ("  two spaces", "")
    # a token that is itself a brace expression
    assert rpt_reward("<think>.</think>\\boxed{{x}}", "{x} = 1", [3, 5, 7]).score == 1.0


def test_predictions_beyond_the_stored_continuation_are_not_rewarded():
    assert byte_prefix_reward(" a b c", " a b", [2, 4]) == (0.0, "beyond_reference", 0)
    assert byte_prefix_reward(" a b", " a b", [2, 4]) == (1.0, "match", 2)
