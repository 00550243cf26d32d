"""Benchmark records in the public schemas -> items; the fields used are reported; bad records are counted."""

import pytest

from rlpt_verl.eval.items import Fields, prompt_of, to_item


def test_mmlu_integer_key():
    item, used = to_item({"question": "Q?", "subject": "x", "choices": ["a", "b", "c", "d"], "answer": 2}, "f:1")
    assert (item.kind, item.answer, item.choices) == ("mc", "C", ("a", "b", "c", "d"))
    assert used == {"question": "question", "answer": "answer", "choices": "choices"}


def test_mmlu_pro_letter_key_and_ten_options():
    rec = {"question_id": 7, "question": "Q?", "options": [str(i) for i in range(10)], "answer": "J", "answer_index": 9}
    item, used = to_item(rec, "f:1")
    assert (item.id, item.answer, len(item.choices)) == ("7", "J", 10)
    assert used["choices"] == "options"


def test_gpqa_options_are_shuffled_per_item_and_the_key_follows_the_correct_text():
    rec = {"Question": "Q?", "Correct Answer": "right", "Incorrect Answer 1": "w1", "Incorrect Answer 2": "w2",
           "Incorrect Answer 3": "w3"}  # fmt: skip
    letters_seen = set()
    for i in range(12):
        item, used = to_item(rec, f"f:{i}", seed=0)
        assert item.choices["ABCD".index(item.answer)] == "right"
        letters_seen.add(item.answer)
        assert to_item(rec, f"f:{i}", seed=0)[0] == item  # seeded: the same order every run
    assert len(letters_seen) > 1  # not always A
    assert used["choices"].startswith("gpqa")


def test_arc_choices_dict_and_columns_and_text_key():
    arc = {"question": "Q?", "choices": {"text": ["x", "y", "z"], "label": ["A", "B", "C"]}, "answerKey": "B"}
    assert to_item(arc, "f:1")[0].answer == "B"
    cols = {"question": "Q?", "A": "x", "B": "y", "C": "z", "D": "w", "answer": "w"}  # key given as option text
    item, used = to_item(cols, "f:2")
    assert (item.answer, used["choices"]) == ("D", "columns A..D")


def test_maths_answer_forms():
    assert to_item({"problem": "P", "answer": "\\frac{1}{2}"}, "f:1")[0].answer == "\\frac{1}{2}"
    assert to_item({"question": "P", "answer": "x\n#### 1,234"}, "f:1")[0].answer == "1234"  # GSM8K
    assert to_item({"question": "P", "final_answer": ["$3$"]}, "f:1")[0].answer == "$3$"  # OlympiadBench
    item, used = to_item({"problem": "P", "solution": "thus \\boxed{5}."}, "f:1")
    assert (item.answer, used["answer"]) == ("5", "solution")


@pytest.mark.parametrize(
    "record, reason",
    [
        ({"text": "x"}, "no_question_field"),
        ({"question": "  ", "answer": "1"}, "empty_question"),
        ({"question": "Q?", "choices": ["a", "b"], "answer": 5}, "no_answer_key"),
        ({"question": "Q?", "choices": ["a", "b"], "answer": "maybe"}, "no_answer_key"),
        ({"problem": "P", "solution": "It is obvious."}, "answer_not_extractable"),
    ],
)
def test_unusable_records_say_why(record, reason):
    assert to_item(record, "f:1") == (None, reason)


def test_overrides_name_the_fields():
    rec = {"stem": "Q?", "alts": ["a", "b", "c"], "gold": "c"}
    item, used = to_item(rec, "f:1", Fields(question="stem", answer="gold", choices="alts"))
    assert (item.answer, used) == ("C", {"question": "stem", "answer": "gold", "choices": "alts"})


def test_prompts_carry_the_options_and_the_instruction():
    item, _ = to_item({"question": "Q?", "choices": ["a", "b"], "answer": 0}, "f:1")
    text = prompt_of(item)[0]["content"]
    assert "A. a\nB. b" in text and "The answer is X" in text
    maths, _ = to_item({"problem": "P", "answer": "1"}, "f:1")
    assert "\\boxed{}" in prompt_of(maths)[0]["content"]
