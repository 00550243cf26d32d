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
  Answer 1..3`` (shuffled per item, so the correct option is not always A: the order is seeded by ``--seed``
  and the record's *content*, never its path, recorded as ``option_order`` in ``samples.jsonl``/``verdicts.jsonl``,
  and a record that carries ``option_order`` or its options as ``choices`` keeps that order); the key in
  ``answer_letter``/``answerKey``/``answer`` (a letter or text of an option) or ``answer_index`` / an
  integer ``answer`` (MMLU);
- OlympiadBench (``final_answer`` list, ``is_multiple_answer``, ``unit``, ``answer_type``, ``error``): every
  answer of the list together, the unit stripped from the reply, ``error`` as the numeric tolerance;
- KOR-Bench (``idx``, ``question``, ``answer`` in ``[[ ]]``, ``rule_id``; the category from a ``category``
  field or the file's folder, the rule text from ``rule_content`` or the ``rule.jsonl`` beside the file).

Field names are matched case-insensitively (AIME 2024's ``Problem``/``Answer``/``ID``).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field

from rlpt_verl.eval.choices import letters

__all__ = [
    "Item",
    "Fields",
    "to_item",
    "MATH_INSTRUCTION",
    "MC_INSTRUCTION",
    "KOR_INSTRUCTION",
    "prompt_of",
    "KOR_CATEGORIES",
]

MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
MC_INSTRUCTION = 'Answer with the letter of the correct option, ending with "The answer is X".'
KOR_INSTRUCTION = "Give your final answer in double square brackets, like this: [[your answer]]."
KOR_CATEGORIES = ("operation", "logic", "cipher", "puzzle", "counterfactual")
ID_FIELDS = ("id", "unique_id", "problem_id", "question_id", "idx", "record id", "uuid")
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
    category: str = field(default="", repr=False)  # KOR-Bench: its task category, reported apart
    option_order: tuple[int, ...] = field(default=(), repr=False)  # GPQA: source index of each shown option
    grading: tuple[tuple[str, object], ...] = field(default=(), repr=False)  # OlympiadBench: unit, tolerance, ...


@dataclass(frozen=True)
class Fields:
    """Overrides (``--question-field`` etc.); None means "recognise"."""

    question: str | None = None
    answer: str | None = None
    choices: str | None = None


def _key(record: dict, names) -> str | None:
    """The record's own spelling of the first of ``names`` it has, matched case-insensitively."""
    lower = {k.lower(): k for k in record if isinstance(k, str)}
    for name in names:
        if name in record:
            return name
        if name.lower() in lower:
            return lower[name.lower()]
    return None


def _item_id(record: dict, default_id: str) -> str:
    for name in ID_FIELDS:
        key = _key(record, (name,))
        if key is not None and record.get(key) not in (None, ""):
            return str(record[key])
    return default_id


def gpqa_order(seed: int, question: str, options: list[str]) -> list[int]:
    """The option order of a GPQA record: seeded by ``seed`` and the record's content, so the same record gets
    the same order whatever path or line it was read from.

    >>> gpqa_order(0, "Q?", ["r", "w1", "w2", "w3"]) == gpqa_order(0, "Q?", ["r", "w1", "w2", "w3"])
    True
    """
    digest = hashlib.sha256(json.dumps([question, *options]).encode()).hexdigest()[:16]
    order = list(range(len(options)))
    random.Random(f"{seed}:{digest}").shuffle(order)
    return order


def _given_order(record: dict, options: list[str]) -> list[int] | None | str:
    """A GPQA order the record carries (``option_order`` indices, or ``choices``/``options`` texts); "bad" if
    it carries one that is not a permutation of its four options."""
    raw = record.get("option_order")
    if raw is not None:
        try:
            order = [int(x) for x in raw]
        except (TypeError, ValueError):
            return "bad"
        return order if sorted(order) == list(range(len(options))) else "bad"
    key = _key(record, CHOICE_FIELDS)
    shown = record.get(key) if key else None
    if isinstance(shown, list | tuple):
        texts = [str(x).strip() for x in shown]
        if sorted(texts) != sorted(options) or len(set(options)) != len(options):
            return "bad"
        return [options.index(t) for t in texts]
    return None


def _choices(record: dict, fields: Fields, seed: int) -> tuple[list[str] | None, str | None, str, list[int]]:
    """(options, correct letter or None, how they were found, GPQA source order or [])."""
    if fields.choices:
        raw = record.get(fields.choices)
        source = fields.choices
    elif GPQA_CORRECT in record and all(k in record for k in GPQA_WRONG):
        options = [str(record[GPQA_CORRECT]).strip()] + [str(record[k]).strip() for k in GPQA_WRONG]
        order = _given_order(record, options)
        how = "gpqa(Correct Answer, Incorrect Answer 1-3; order given by the record)"
        if order == "bad":
            return None, None, "bad_option_order", []
        if order is None:
            q_key = _key(record, ("Question", "question"))
            order = gpqa_order(seed, str(record.get(q_key, "")), options)
            how = "gpqa(Correct Answer, Incorrect Answer 1-3; shuffled by seed and content)"
        shuffled = [options[i] for i in order]
        return shuffled, "ABCD"[order.index(0)], how, order
    else:
        source = next((k for k in record if k.lower() in CHOICE_FIELDS and isinstance(record[k], list | dict)), None)
        raw = record.get(source) if source else None
        if raw is None:
            cols = [c for c in "ABCDEFGHIJ" if isinstance(record.get(c), str)]
            if len(cols) >= 2 and cols == list("ABCDEFGHIJ"[: len(cols)]):
                raw, source = [record[c] for c in cols], f"columns {cols[0]}..{cols[-1]}"
    if isinstance(raw, dict) and "text" in raw:  # ARC: {"text": [...], "label": [...]}
        raw = list(raw["text"])
    if not isinstance(raw, list | tuple) or len(raw) < 2:
        return None, None, "", []
    return [str(x).strip() for x in raw], None, str(source), []


def _key_letter(record: dict, fields: Fields, options: list[str]) -> tuple[str | None, str]:
    valid = letters(len(options))
    keys = [fields.answer] if fields.answer else [k for k in (_key(record, (n,)) for n in KEY_FIELDS) if k]
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


def to_item(record: dict, default_id: str, fields: Fields = Fields(), seed: int = 0, source: dict | None = None):
    """(Item, {"question": field, "answer": field, "choices": how, "schema": name}) or (None, skip reason).

    ``source`` carries what the file around the record says (KOR-Bench: ``category``, ``rules`` by id).

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
    kor = _kor_item(record, item_id, fields, source or {})
    if kor is not None:
        return kor
    for flag, name in (("question", fields.question), ("answer", fields.answer), ("choices", fields.choices)):
        if name and _key(record, (name,)) is None:
            return None, f"{flag}_field_missing"
    q_key = fields.question or _key(record, QUESTION_FIELDS)
    if q_key is None:
        return None, "no_question_field"
    question = record.get(q_key)
    if not isinstance(question, str) or not question.strip():
        return None, "empty_question"
    options, letter, how, order = _choices(record, fields, seed)
    if how == "bad_option_order":
        return None, how
    if options is not None:
        if len(options) > 26:
            return None, "too_many_options"
        key = "gpqa"
        if letter is None:
            letter, key = _key_letter(record, fields, options)
        if letter is None:
            return None, "no_answer_key"
        used = {"question": q_key, "answer": key, "choices": how, "schema": "gpqa" if order else "multiple_choice"}
        return Item(item_id, "mc", question.strip(), letter, tuple(options), option_order=tuple(order)), used
    if not fields.answer and isinstance(record.get(_key(record, ("final_answer",)) or ""), list):
        return _olympiad_item(record, item_id, q_key)
    answer_field = fields.answer or _key(record, ("answer", "final_answer", "solution"))
    rec = dict(record)
    if answer_field and isinstance(rec.get(answer_field), list) and rec[answer_field]:
        rec[answer_field] = str(rec[answer_field][0])
    qa, reason = to_question_answer(rec, q_key, answer_field)
    if qa is None:
        return None, reason
    used = {"question": q_key, "answer": answer_field, "choices": None, "schema": "math"}
    return Item(item_id, "math", qa[0], qa[1]), used


_MATH_DELIMS = re.compile(r"^\$+|\$+$|^\\\(|\\\)$|^\\\[|\\\]$")


def strip_math_delims(text: str) -> str:
    """``$x$``, ``\\(x\\)``, ``\\[x\\]`` -> ``x`` (an OlympiadBench answer is stored in delimiters).

    >>> strip_math_delims("$\\\\frac{1}{2}$"), strip_math_delims(" 3 ")
    ('\\\\frac{1}{2}', '3')
    """
    text = text.strip()
    for _ in range(2):
        text = _MATH_DELIMS.sub("", text).strip()
    return text


def _olympiad_item(record: dict, item_id: str, q_key: str):
    """OlympiadBench: every answer of ``final_answer`` together (``is_multiple_answer``), its unit and tolerance."""
    answers = [strip_math_delims(str(a)) for a in record[_key(record, ("final_answer",))] if str(a).strip()]
    if not answers:
        return None, "empty"
    question = record[q_key]
    if not isinstance(question, str) or not question.strip():
        return None, "empty_question"
    grading: dict = {"answers": tuple(answers), "multiple": bool(record.get("is_multiple_answer")) or len(answers) > 1}
    unit = record.get("unit")
    if isinstance(unit, str) and unit.strip():
        grading["unit"] = strip_math_delims(unit)
    error = record.get("error")
    try:
        if error not in (None, ""):
            grading["tolerance"] = float(str(error).split(",")[0])
    except ValueError:
        pass
    if isinstance(record.get("answer_type"), str):
        grading["answer_type"] = record["answer_type"]
    used = {"question": q_key, "answer": "final_answer", "choices": None, "schema": "olympiadbench"}
    item = Item(item_id, "math", question.strip(), ", ".join(answers), grading=tuple(sorted(grading.items())))
    return item, used


_KOR_ANSWER = re.compile(r"^\s*\[\[.*\]\]\s*$", re.S)


def _kor_item(record: dict, item_id: str, fields: Fields, source: dict):
    """KOR-Bench (arXiv 2410.06526): ``question`` + ``answer`` in ``[[ ]]`` + ``rule_id``; the rule text from the
    record (``rule_content``) or from ``rule.jsonl`` beside the file; the category from the record or its folder."""
    answer = record.get("answer")
    if fields.question or fields.answer or "rule_id" not in record or not isinstance(answer, str):
        return None
    if not _KOR_ANSWER.match(answer) or not isinstance(record.get("question"), str):
        return None
    category = str(record.get("category") or record.get("split") or source.get("category") or "").lower()
    if category not in KOR_CATEGORIES:
        return None, "kor_category_unknown"
    rule = record.get("rule_content") or (source.get("rules") or {}).get(str(record["rule_id"]))
    if not isinstance(rule, str) or not rule.strip():
        return None, "kor_rule_not_found"
    question = f"### Rule:\n{rule.strip()}\n\n### Question:\n{record['question'].strip()}"
    used = {"question": "rule_content + question", "answer": "answer", "choices": None, "schema": "korbench"}
    grading = {"rule_id": str(record["rule_id"]), "idx": str(record.get("idx", ""))}
    if isinstance(record.get("real_life_answer"), str):  # counterfactual: the answer without the rule
        grading["real_life_answer"] = record["real_life_answer"]
    item = Item(f"{category}:{item_id}", "kor", question, answer.strip(), category=category,
                grading=tuple(sorted(grading.items())))  # fmt: skip
    return item, used


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
    if item.kind == "kor":
        return [{"role": "user", "content": f"{item.question}\n\n{KOR_INSTRUCTION}"}]
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


def ask_fingerprint(item: Item) -> str:
    """A digest of what ``item`` asks and how it is graded (prompt, gold, options, grading), stored with each
    sample: a benchmark file edited under the same ids changes it, and its old samples are asked again.

    >>> a, b = Item("1", "math", "1+1?", "2"), Item("1", "math", "1+1?", "3")
    >>> ask_fingerprint(a) == ask_fingerprint(Item("1", "math", "1+1?", "2")) != ask_fingerprint(b)
    True
    """
    what = [prompt_of(item), item.kind, item.answer, list(item.choices), list(item.byte_ends), item.category]
    what += [list(item.option_order), [[k, repr(v)] for k, v in item.grading]]
    return hashlib.blake2b(json.dumps(what, sort_keys=True).encode(), digest_size=8).hexdigest()
