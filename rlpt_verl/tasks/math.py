"""`rlpt math-data`: math question/answer data -> verl's RL parquet for RLVR after RLPT.

Rows use data_source ``DigitalLearningGmbH/MATH-lighteval`` so verl's built-in ``default_compute_score``
checks answers with its MATH verifier (last ``\\boxed{}`` of the response against the ground truth).
The stored answer is what follows GSM8K's ``####``, else the final run of ``\\boxed{}`` (``\\boxed{1}\\boxed{2}``
is the one answer ``1, 2``: :data:`rlpt_verl.boxes.FINAL_BOX_RULE`), else the answer field itself;
a worked solution without either gives its final number or is skipped and counted (``answer_not_extractable``).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass

from rlpt_verl.boxes import final_boxed
from rlpt_verl.errors import UserError
from rlpt_verl.options import opt
from rlpt_verl.paths import staged_output, write_json_atomic
from rlpt_verl.reports import MATH_REPORT
from rlpt_verl.tasks.common import held_out

DATA_SOURCE = "DigitalLearningGmbH/MATH-lighteval"
INSTRUCTION = "Let's think step by step and output the final answer within \\boxed{}."
QUESTION_FIELDS = ("problem", "question", "prompt", "query")
ANSWER_FIELDS = ("answer", "final_answer", "solution", "response")


SOLUTION_FIELDS = ("solution", "response")  # whole worked solutions: the answer must be found inside
_GSM8K = re.compile(r"####\s*(.+?)\s*$", re.S)
_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
_FINAL_NUMBER = re.compile(r"(-?\d[\d,]*(?:\.\d+)?)\s*\$?\s*[.!]?\s*$")


def _clean_number(answer: str) -> str:
    return answer.replace(",", "") if _THOUSANDS.match(answer) else answer


def final_answer(text: str, solution: bool = False) -> str | None:
    r"""The answer verl's MATH verifier should compare with: after GSM8K's ``####``, else the final boxes (several
    adjacent boxes are one answer, see :mod:`rlpt_verl.boxes`),
    else an answer field as it stands; a worked ``solution`` without either gives its final number, or None
    (not extractable: such a row would score 0 for a correct ``\boxed{}`` answer).

    >>> final_answer("so x = \\boxed{\\frac{1}{2}}."), final_answer(" 42 ")
    ('\\frac{1}{2}', '42')
    >>> final_answer("She pays 3*24 = 72.\n#### 72")
    '72'
    >>> final_answer("#### 1,000"), final_answer("In all 12 + 30 = 42.", solution=True)
    ('1000', '42')
    >>> final_answer("The area doubles, as shown above.", solution=True) is None
    True
    """
    gsm8k = _GSM8K.search(text)
    if gsm8k:
        return _clean_number(gsm8k.group(1).strip()) or None
    boxed = final_boxed(text)
    if boxed is not None:
        return boxed
    if not solution:
        return text.strip() or None
    final = _FINAL_NUMBER.search(text.strip())
    return _clean_number(final.group(1).rstrip(".")) if final else None


def to_question_answer(record: dict, question_field: str | None = None, answer_field: str | None = None):
    """(question, answer) or (None, reason).

    >>> to_question_answer({"question": "How many?", "answer": "Two and two.\\n#### 4"})
    (('How many?', '4'), None)
    >>> to_question_answer({"problem": "Why?", "solution": "Because it is so."})
    (None, 'answer_not_extractable')
    """
    for flag, name in (("question", question_field), ("answer", answer_field)):
        if name and name not in record:
            return None, f"{flag}_field_missing"
    q_key = question_field or next((k for k in QUESTION_FIELDS if k in record), None)
    a_key = answer_field or next((k for k in ANSWER_FIELDS if k in record), None)
    if q_key is None or a_key is None:
        return None, "unknown_format"
    q, a = record.get(q_key), record.get(a_key)
    if isinstance(a, int | float) and not isinstance(a, bool):
        a = str(a)
    if not isinstance(q, str) or not isinstance(a, str):
        return None, "not_a_string"
    if not q.strip() or not a.strip():
        return None, "empty"
    answer = final_answer(a, solution=a_key.lower() in SOLUTION_FIELDS)
    if answer is None:
        return None, "answer_not_extractable"
    return (q.strip(), answer), None


@dataclass(frozen=True, kw_only=True)
class MathDataConfig:
    inputs: tuple[str, ...] = opt(help=".jsonl/.json/.parquet files, folders, or `datasets` folders", positional=True)
    output: str = opt(help="output folder (train.parquet, val.parquet, math_report.json)", aliases=("-o",))
    question_field: str | None = opt(None, "field holding the question; none: problem/question/prompt/query")
    answer_field: str | None = opt(None, "field holding the answer; none: answer/final_answer/solution/response")
    val_fraction: float = opt(0.05, "share of questions held out by a seeded hash")
    seed: int = opt(0, "seed of the held-out hash")
    split: str | None = opt(None, "split of a `datasets` folder saved with several; one is read", shown_default="train")


def run_math_data(cfg: MathDataConfig) -> dict:
    """Convert and write; the files appear in ``cfg.output`` only when the whole run succeeded."""
    from rlpt_verl.data_tools import refuse_output_inside

    refuse_output_inside(list(cfg.inputs), cfg.output)
    with staged_output(cfg.output, owned=("train.parquet", "val.parquet", MATH_REPORT)) as out:
        return _math_data(cfg, out)


def _math_data(cfg: MathDataConfig, output: str) -> dict:
    inputs, val_fraction, seed = cfg.inputs, cfg.val_fraction, cfg.seed
    question_field, answer_field = cfg.question_field, cfg.answer_field
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rlpt_verl.data_tools import ReaderConfig, RecordReader

    if not 0 <= val_fraction < 1:
        raise UserError("--val-fraction must be in [0, 1)")
    reader = RecordReader(list(inputs), ReaderConfig(split=cfg.split))
    rows = {"train": [], "val": []}
    skipped = Counter()
    first_keys: list[str] = []
    for _, record in reader:
        first_keys = first_keys or [str(k) for k in record][:8]
        qa, reason = to_question_answer(record, question_field, answer_field)
        if qa is None:
            skipped[reason] += 1
            continue
        question, answer = qa
        split = "val" if held_out(seed, question, val_fraction) else "train"
        rows[split].append(
            {
                "data_source": DATA_SOURCE,
                "prompt": [{"role": "user", "content": f"{question} {INSTRUCTION}"}],
                "ability": "math",
                "reward_model": {"style": "rule", "ground_truth": answer},
                "extra_info": {"index": len(rows["train"]) + len(rows["val"]), "split": split},
            }
        )
    if not rows["train"]:
        top = skipped.most_common(1)[0][0] if skipped else ""
        hint = "use problem/question and answer fields or --question-field/--answer-field"
        for flag, name in (("question", question_field), ("answer", answer_field)):
            if top == f"{flag}_field_missing":
                hint = f"--{flag}-field {name!r} is not a field of these records (they have {', '.join(first_keys)})"
        raise UserError(f"no usable question/answer in {', '.join(inputs)} (skipped: {dict(skipped)}); {hint}")
    for split, data in rows.items():
        if data:  # no empty val.parquet (a table without columns, which verl cannot load)
            pq.write_table(pa.Table.from_pylist(data), os.path.join(output, f"{split}.parquet"))
    report = {
        "records_read": reader.stats.forwarded + reader.stats.total_dropped,
        "skipped_at_read": dict(sorted(reader.stats.dropped.items())),
        "skipped": dict(sorted(skipped.items())),
        "rows": {k: len(v) for k, v in rows.items()},
        "files": {k: f"{k}.parquet" for k, v in rows.items() if v},
        "data_source": DATA_SOURCE,
        "dataset_splits": reader.dataset_splits,
    }
    write_json_atomic(os.path.join(output, MATH_REPORT), report, sort_keys=True)
    return report
