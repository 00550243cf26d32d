"""Benchmark records -> evaluation items (maths or multiple choice), recognising the public schemas. Pure logic.

Recognised without options (the field names are reported, so a user can see what was read):

- maths (MATH-500, AIME, AMC, Minerva, GSM8K, OlympiadBench): question in ``problem``/``question``/
  ``prompt``/``query``; answer in ``answer``/``final_answer`` (a list takes its first element) or a worked
  ``solution`` reduced to its last ``\\boxed{}`` (as ``rlpt math-data`` does);
- verl RL rows (``prompt`` messages + ``reward_model.ground_truth``: ``rlpt math-data`` output, or verl's
  ``main_generation_server`` output, which adds ``responses``): maths, sent with the stored prompt;
- RPT next-token splits (``val_easy/medium/hard.parquet`` from ``rlpt build-rpt``, data source ``rpt*``): the
  stored chat prompt, scored with the ``rpt`` reward (byte prefix of the true continuation, whole tokens);
- multiple choice: ``choices``/``options`` as a list (MMLU, MMLU-Pro, SuperGPQA) or as ARC's
  ``{"text": [...], "label": [...]}``; ``A``..``J`` columns; GPQA's ``Correct Answer`` + ``Incorrect
  Answer 1..3`` (shuffled per item with the seed, so the correct option is not always A); the key in
  ``answer``/``answer_letter``/``answerKey`` (a letter or text of an option) or ``answer_index`` /
  an integer ``answer`` (MMLU).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from rlpt_verl.eval.choices import letters

__all__ = ["Item", "Fields", "to_item", "MATH_INSTRUCTION", "MC_INSTRUCTION", "prompt_of"]

MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
MC_INSTRUCTION = 'Answer with the letter of the correct option, ending with "The answer is X".'
ID_FIELDS = ("id", "unique_id", "problem_id", "question_id", "idx", "ID")
CHOICE_FIELDS = ("choices", "options")
KEY_FIELDS = ("answer_letter", "answerKey", "answer_index", "answer", "label")
GPQA_CORRECT, GPQA_WRONG = "Correct Answer", ("Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")


@dataclass(frozen=True)
class Item:
    id: str
    kind: str  # "math" | "mc" | "rpt"
    question: str
    answer: str  # maths: the reference answer; multiple choice: the correct letter; rpt: the continuation
    choices: tuple[str, ...] = ()
    messages: tuple = field(default=(), repr=False)  # rpt: the chat prompt as built
    byte_ends: tuple[int, ...] = field(default=(), repr=False)  # rpt: policy-token byte boundaries of the continuation


@dataclass(frozen=True)
class Fields:
    """Overrides (``--question-field`` etc.); None means "recognise"."""

    question: str | None = None
    answer: str | None = None
    choices: str | None = None


def _item_id(record: dict, default_id: str) -> str:
    for key in ID_FIELDS:
        if record.get(key) not in (None, ""):
            return str(record[key])
    return default_id


def _choices(record: dict, fields: Fields, seed: int, item_id: str) -> tuple[list[str] | None, str | None, str]:
    """(options, correct letter or None, how they were found)."""
    if fields.choices:
        raw = record.get(fields.choices)
        source = fields.choices
    elif GPQA_CORRECT in record and all(k in record for k in GPQA_WRONG):
        options = [str(record[GPQA_CORRECT]).strip()] + [str(record[k]).strip() for k in GPQA_WRONG]
        order = list(range(4))
        random.Random(f"{seed}:{item_id}").shuffle(order)
        shuffled = [options[i] for i in order]
        return shuffled, "ABCD"[order.index(0)], "gpqa(Correct Answer, Incorrect Answer 1-3; shuffled by seed)"
    else:
        source = next((k for k in CHOICE_FIELDS if isinstance(record.get(k), list | dict)), None)
        raw = record.get(source) if source else None
        if raw is None:
            cols = [c for c in "ABCDEFGHIJ" if isinstance(record.get(c), str)]
            if len(cols) >= 2 and cols == list("ABCDEFGHIJ"[: len(cols)]):
                raw, source = [record[c] for c in cols], f"columns {cols[0]}..{cols[-1]}"
    if isinstance(raw, dict) and "text" in raw:  # ARC: {"text": [...], "label": [...]}
        raw = list(raw["text"])
    if not isinstance(raw, list | tuple) or len(raw) < 2:
        return None, None, ""
    return [str(x).strip() for x in raw], None, str(source)


def _key_letter(record: dict, fields: Fields, options: list[str]) -> tuple[str | None, str]:
    valid = letters(len(options))
    keys = [fields.answer] if fields.answer else [k for k in KEY_FIELDS if k in record]
    for key in keys:
        value = record.get(key)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit() and key == "answer_index"):
            i = int(value)
            if 0 <= i < len(options):
                return valid[i], key
            continue
        text = str(value).strip()
        letter = text.strip("()").upper()
        if len(letter) == 1 and letter in valid:
            return letter, key
        if text in options:
            return valid[options.index(text)], key
    return None, ""


def to_item(record: dict, default_id: str, fields: Fields = Fields(), seed: int = 0):
    """(Item, {"question": field, "answer": field, "choices": how}) or (None, skip reason).

    >>> to_item({"question": "2+2?", "choices": ["3", "4"], "answer": 1}, "f:1")[0]
    Item(id='f:1', kind='mc', question='2+2?', answer='B', choices=('3', '4'))
    >>> to_item({"problem": "x?", "solution": "so \\\\boxed{7}", "unique_id": "p/1"}, "f:2")[0]
    Item(id='p/1', kind='math', question='x?', answer='7', choices=())
    >>> to_item({"text": "no question here"}, "f:3")
    (None, 'no_question_field')
    """
    from rlpt_verl.tasks.math import QUESTION_FIELDS, to_question_answer

    item_id = _item_id(record, default_id)
    rpt = _rpt_item(record, item_id)
    if rpt is not None:
        return rpt
    verl_row = _verl_row_item(record, item_id, fields)
    if verl_row is not None:
        return verl_row
    q_key = fields.question or next((k for k in (*QUESTION_FIELDS, "Question") if k in record), None)
    if q_key is None:
        return None, "no_question_field"
    question = record.get(q_key)
    if not isinstance(question, str) or not question.strip():
        return None, "empty_question"
    options, letter, how = _choices(record, fields, seed, item_id)
    if options is not None:
        if len(options) > 26:
            return None, "too_many_options"
        key = "gpqa"
        if letter is None:
            letter, key = _key_letter(record, fields, options)
        if letter is None:
            return None, "no_answer_key"
        used = {"question": q_key, "answer": key, "choices": how}
        return Item(item_id, "mc", question.strip(), letter, tuple(options)), used
    answer_field = fields.answer or next((k for k in ("answer", "final_answer", "solution") if k in record), None)
    rec = dict(record)
    if answer_field and isinstance(rec.get(answer_field), list) and rec[answer_field]:
        rec[answer_field] = str(rec[answer_field][0])  # OlympiadBench: final_answer is a list
    qa, reason = to_question_answer(rec, q_key, answer_field)
    if qa is None:
        return None, reason
    return Item(item_id, "math", qa[0], qa[1]), {"question": q_key, "answer": answer_field, "choices": None}


def _rpt_item(record: dict, item_id: str):
    if not str(record.get("data_source", "")).startswith("rpt") or not isinstance(record.get("prompt"), list):
        return None
    rm = record.get("reward_model") or {}
    if not isinstance(rm, dict) or not isinstance(rm.get("ground_truth"), str) or not rm.get("token_byte_ends"):
        return None, "rpt_row_without_reward_model"
    extra = record.get("extra_info") or {}
    rid = f"{extra.get('split') or 'rpt'}:{extra['index']}" if isinstance(extra, dict) and "index" in extra else item_id
    messages = tuple({"role": m["role"], "content": m["content"]} for m in record["prompt"])
    item = Item(rid, "rpt", messages[-1]["content"], rm["ground_truth"], (), messages, tuple(rm["token_byte_ends"]))
    return item, {"question": "prompt", "answer": "reward_model.ground_truth", "choices": None}


def _verl_row_item(record: dict, item_id: str, fields: Fields):
    """A verl RL row (``prompt`` messages + ``reward_model.ground_truth``, e.g. from ``rlpt math-data``, or
    verl's generation output with ``responses``): a maths item sent with its stored prompt."""
    rm = record.get("reward_model")
    if fields.question or not isinstance(record.get("prompt"), list) or not isinstance(rm, dict):
        return None
    gold = rm.get("ground_truth")
    if isinstance(gold, int | float) and not isinstance(gold, bool):
        gold = str(gold)
    if not isinstance(gold, str) or not gold.strip():
        return None, "verl_row_without_ground_truth"
    try:
        messages = tuple({"role": m["role"], "content": m["content"]} for m in record["prompt"])
    except (TypeError, KeyError):
        return None, "verl_row_prompt_not_messages"
    extra = record.get("extra_info") or {}
    rid = f"{extra.get('split') or 'row'}:{extra['index']}" if isinstance(extra, dict) and "index" in extra else item_id
    item = Item(rid, "math", messages[-1]["content"], gold.strip(), (), messages)
    return item, {"question": "prompt", "answer": "reward_model.ground_truth", "choices": None}


def prompt_of(item: Item) -> list[dict]:
    """The chat prompt sent for ``item`` (recorded in the report): the question plus the instruction.

    >>> prompt_of(Item("1", "mc", "Pick one.", "A", ("x", "y")))[0]["content"]
    'Pick one.\\n\\nA. x\\nB. y\\n\\nAnswer with the letter of the correct option, ending with "The answer is X".'
    """
    if item.messages:  # rpt rows and verl RL rows: the prompt as built
        return [dict(m) for m in item.messages]
    if item.kind == "mc":
        valid = letters(len(item.choices))
        options = "\n".join(f"{letter}. {text}" for letter, text in zip(valid, item.choices, strict=True))
        return [{"role": "user", "content": f"{item.question}\n\n{options}\n\n{MC_INSTRUCTION}"}]
    return [{"role": "user", "content": f"{item.question}\n\n{MATH_INSTRUCTION}"}]


def sample_seed(seed: int, item_id: str, index: int) -> int:
    """A per-sample seed for servers that honour it (vLLM): the same run asks for the same samples.

    >>> sample_seed(0, "a", 1) == sample_seed(0, "a", 1) != sample_seed(0, "a", 2)
    True
    """
    digest = hashlib.sha256(f"{seed}:{item_id}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
