"""Benchmark records in the public schemas -> items; the fields used are reported; bad records are counted."""

import pytest

from rlpt_verl.eval.items import Fields, prompt_of, to_item


def test_mmlu_integer_key():
    item, used = to_item({"question": "Q?", "subject": "x", "choices": ["a", "b", "c", "d"], "answer": 2}, "f:1")
    assert (item.kind, item.answer, item.choices) == ("mc", "C", ("a", "b", "c", "d"))
    assert used == {"question": "question", "answer": "answer", "choices": "choices", "schema": "multiple_choice"}


def test_mmlu_pro_letter_key_and_ten_options():
    rec = {"question_id": 7, "question": "Q?", "options": [str(i) for i in range(10)], "answer": "J", "answer_index": 9}
    item, used = to_item(rec, "f:1")
    assert (item.id, item.answer, len(item.choices)) == ("7", "J", 10)
    assert used["choices"] == "options"


GPQA = {"Question": "Q?", "Correct Answer": "right", "Incorrect Answer 1": "w1", "Incorrect Answer 2": "w2",
        "Incorrect Answer 3": "w3", "Record ID": "recABC"}  # fmt: skip


def test_gpqa_options_are_shuffled_per_item_and_the_key_follows_the_correct_text():
    letters_seen = set()
    for i in range(12):
        rec = {**GPQA, "Question": f"Q{i}?"}
        item, used = to_item(rec, f"f:{i}", seed=0)
        assert item.choices["ABCD".index(item.answer)] == "right"
        assert [("right", "w1", "w2", "w3")[j] for j in item.option_order] == list(item.choices)
        letters_seen.add(item.answer)
        assert to_item(rec, f"f:{i}", seed=0)[0] == item  # seeded: the same order every run
    assert len(letters_seen) > 1  # not always A
    assert used["choices"].startswith("gpqa") and used["schema"] == "gpqa"


def test_gpqa_order_does_not_depend_on_the_path_it_was_read_from():
    """The same record typed as gpqa.jsonl, ./gpqa.jsonl or /data/gpqa.jsonl, at any line: one order."""
    orders = {to_item(GPQA, path, seed=0)[0].option_order for path in ("gpqa.jsonl:1", "./gpqa.jsonl:7", "/d/g:3")}
    assert len(orders) == 1
    assert to_item(GPQA, "x", seed=0)[0].id == "recABC"  # its own id field is read
    no_id = {k: v for k, v in GPQA.items() if k != "Record ID"}
    assert to_item(no_id, "a:1", seed=0)[0].option_order == to_item(no_id, "b:9", seed=0)[0].option_order


def test_gpqa_given_order_is_kept_and_a_bad_one_refused():
    item, used = to_item({**GPQA, "option_order": [2, 0, 3, 1]}, "x")
    assert item.choices == ("w2", "right", "w3", "w1") and item.answer == "B" and "given" in used["choices"]
    item, _ = to_item({**GPQA, "choices": ["w3", "w1", "right", "w2"]}, "x")  # shown options as texts
    assert item.answer == "C" and item.option_order == (3, 1, 0, 2)
    assert to_item({**GPQA, "option_order": [0, 0, 1, 2]}, "x") == (None, "bad_option_order")
    assert to_item({**GPQA, "choices": ["w3", "w1", "other", "w2"]}, "x") == (None, "bad_option_order")


def test_arc_choices_dict_and_columns_and_text_key():
    arc = {"question": "Q?", "choices": {"text": ["x", "y", "z"], "label": ["A", "B", "C"]}, "answerKey": "B"}
    assert to_item(arc, "f:1")[0].answer == "B"
    cols = {"question": "Q?", "A": "x", "B": "y", "C": "z", "D": "w", "answer": "w"}  # key given as option text
    item, used = to_item(cols, "f:2")
    assert (item.answer, used["choices"]) == ("D", "columns A..D")


def test_maths_answer_forms():
    assert to_item({"problem": "P", "answer": "\\frac{1}{2}"}, "f:1")[0].answer == "\\frac{1}{2}"
    assert to_item({"question": "P", "answer": "x\n#### 1,234"}, "f:1")[0].answer == "1234"  # GSM8K
    assert to_item({"question": "P", "final_answer": ["$3$"]}, "f:1")[0].answer == "3"  # OlympiadBench
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
    assert (item.answer, used) == (
        "C",
        {"question": "stem", "answer": "gold", "choices": "alts", "schema": "multiple_choice"},
    )


def test_prompts_carry_the_options_and_the_instruction():
    item, _ = to_item({"question": "Q?", "choices": ["a", "b"], "answer": 0}, "f:1")
    text = prompt_of(item)[0]["content"]
    assert "A. a\nB. b" in text and "The answer is X" in text
    maths, _ = to_item({"problem": "P", "answer": "1"}, "f:1")
    assert "\\boxed{}" in prompt_of(maths)[0]["content"]


# The RLPT paper's eleven benchmarks (arXiv 2509.19249 §4), each as a record in its public copy's schema.
ELEVEN = {
    "mmlu (cais/mmlu)": ({"question": "Q?", "subject": "law", "choices": ["a", "b", "c", "d"], "answer": 3}, "mc", "D"),
    "mmlu_pro (TIGER-Lab/MMLU-Pro)": (
        {
            "question_id": 70,
            "question": "Q?",
            "options": list("abcdefghij"),
            "answer": "I",
            "answer_index": 8,
            "cot_content": "",
            "category": "law",
            "src": "x",
        },
        "mc",
        "I",
    ),  # fmt: skip
    "gpqa_diamond (Idavidrein/gpqa)": (GPQA, "mc", None),
    "supergpqa (m-a-p/SuperGPQA)": (
        {
            "uuid": "u1",
            "question": "Q?",
            "options": ["p", "q", "r"],
            "answer": "q",
            "answer_letter": "B",
            "discipline": "Science",
            "field": "f",
            "subfield": "s",
            "difficulty": "middle",
            "is_calculation": False,
        },
        "mc",
        "B",
    ),  # fmt: skip
    "korbench (KOR-Bench/KOR-Bench)": (
        {
            "idx": "1",
            "question": "Compute 4※7.",
            "answer": "[[24]]",
            "rule_id": "1",
            "category": "operation",
            "rule_content": "a※b = 24 when neither divides the other.",
        },
        "kor",
        "[[24]]",
    ),  # fmt: skip
    "olympiadbench (Hothan/OlympiadBench)": (
        {
            "id": 2231,
            "question": "Q?",
            "solution": ["..."],
            "final_answer": ["$1$", "$-2$"],
            "is_multiple_answer": True,
            "unit": None,
            "answer_type": "Numerical",
            "error": None,
            "subfield": "Algebra",
            "language": "English",
        },
        "math",
        "1, -2",
    ),  # fmt: skip
    "math500 (HuggingFaceH4/MATH-500)": (
        {
            "problem": "Q?",
            "solution": "so \\boxed{1}\\boxed{2}",
            "answer": "\\frac{1}{2}",
            "subject": "Algebra",
            "level": 2,
            "unique_id": "test/algebra/1.json",
        },
        "math",
        "\\frac{1}{2}",
    ),  # fmt: skip
    "amc23 (math-ai/amc23)": ({"id": 0, "question": "Q?", "answer": 27.0, "url": "u"}, "math", "27.0"),
    "minerva_math (math-ai/minervamath)": ({"question": "Q?", "answer": "7.5e-3"}, "math", "7.5e-3"),
    "aime24 (Maxwell-Jia/AIME_2024)": (
        {"ID": "2024-I-1", "Problem": "Q?", "Solution": "...", "Answer": 204},
        "math",
        "204",
    ),
    "aime25 (math-ai/aime25)": ({"id": "0", "problem": "Q?", "answer": "70"}, "math", "70"),
}


@pytest.mark.parametrize("name", ELEVEN)
def test_each_of_the_eleven_benchmarks_is_recognised_in_its_public_schema(name):
    record, kind, answer = ELEVEN[name]
    item, used = to_item(record, "file.jsonl:1")
    assert item is not None, used
    assert item.kind == kind and (answer is None or item.answer == answer)
    assert item.id != "file.jsonl:1" or name.startswith(("mmlu (", "minerva"))  # their own id where they have one
    assert used["schema"] in ("multiple_choice", "gpqa", "korbench", "olympiadbench", "math")


def test_solution_boxes_of_one_final_answer_are_kept_together():
    item, _ = to_item({"problem": "P", "solution": "Hence \\(\\boxed{1}\\) and \\(\\boxed{-2}\\)."}, "f:1")
    assert item.answer == "1, -2"
    item, _ = to_item({"problem": "P", "solution": "Try \\boxed{4}. That fails, so \\boxed{3}."}, "f:1")
    assert item.answer == "3"


def test_olympiadbench_keeps_unit_tolerance_and_every_answer():
    rec = {"id": 1, "question": "Speed?", "final_answer": ["$3.0$"], "is_multiple_answer": False,
           "unit": "$\\mathrm{m/s}$", "answer_type": "Numerical", "error": "1e-1"}  # fmt: skip
    item, used = to_item(rec, "f:1")
    assert dict(item.grading) == {"answers": ("3.0",), "multiple": False, "unit": "\\mathrm{m/s}",
                                  "tolerance": 0.1, "answer_type": "Numerical"}  # fmt: skip


def test_korbench_category_and_rule_from_the_file_layout():
    rec = {"idx": "5", "question": "If X※14=5, find X.", "answer": "[[42]]", "rule_id": "1"}
    assert to_item(rec, "f:1") == (None, "kor_category_unknown")
    assert to_item(rec, "f:1", source={"category": "operation"}) == (None, "kor_rule_not_found")
    item, used = to_item(rec, "f:1", source={"category": "operation", "rules": {"1": "THE RULE"}})
    assert (item.kind, item.category, item.id, used["schema"]) == ("kor", "operation", "operation:5", "korbench")
    assert "THE RULE" in prompt_of(item)[0]["content"] and "[[your answer]]" in prompt_of(item)[0]["content"]
