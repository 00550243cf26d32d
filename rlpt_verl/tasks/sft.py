"""`rlpt sft-data`: instruction data in common formats -> verl's SFT parquet (a ``messages`` column).

RLPT needs a cold-start SFT for basic instruction following (arXiv 2509.19249). Accepted per record, in order:
``messages`` (OpenAI roles) or ``conversations`` (ShareGPT ``from``/``value``); explicit
``--prompt-field``/``--response-field``; or the common pairs instruction(+input)/output (Alpaca),
prompt/response, prompt/completion, question/answer, query/response. Bad records are skipped and
counted by reason; the split is by a seeded hash of each conversation (streaming, deterministic).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass

from rlpt_verl.errors import UserError
from rlpt_verl.options import opt
from rlpt_verl.paths import staged_output, write_json_atomic
from rlpt_verl.reports import SFT_REPORT
from rlpt_verl.tasks.common import PoolWriter, held_out

ROLES = {"system", "user", "assistant", "tool"}
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "tool",
    "observation": "tool",
}
PAIRS = (("prompt", "response"), ("prompt", "completion"), ("question", "answer"), ("query", "response"))


def to_messages(record: dict, prompt_field: str | None = None, response_field: str | None = None):
    """(messages, format) for a record, or (None, reason) when it cannot be a training conversation.

    >>> to_messages({"instruction": "Add.", "input": "1 and 2", "output": "3"})[0][0]["content"]
    'Add.\\n\\n1 and 2'
    >>> to_messages({"messages": [{"role": "user", "content": "hi"}]})
    (None, 'no_assistant_turn_last')
    """
    if prompt_field or response_field:
        return _pair(record.get(prompt_field), record.get(response_field), "fields")
    if "messages" in record:
        return _check(record["messages"], "messages")
    if "conversations" in record:
        convo = record["conversations"]
        if not isinstance(convo, list):
            return None, "conversations_not_a_list"
        mapped = []
        for turn in convo:
            if not isinstance(turn, dict) or turn.get("from") not in SHAREGPT_ROLES:
                return None, "bad_turn"
            mapped.append({"role": SHAREGPT_ROLES[turn["from"]], "content": turn.get("value")})
        return _check(mapped, "sharegpt")
    if "instruction" in record and "output" in record:
        extra = record.get("input") or ""
        prompt = record["instruction"] + ("\n\n" + extra if isinstance(extra, str) and extra.strip() else "")
        return (
            _pair(prompt, record["output"], "alpaca")
            if isinstance(record["instruction"], str)
            else (None, "content_not_string")
        )
    for p, r in PAIRS:
        if p in record and r in record:
            return _pair(record[p], record[r], f"{p}/{r}")
    return None, "unknown_format"


def _pair(prompt, response, fmt: str):
    return _check([{"role": "user", "content": prompt}, {"role": "assistant", "content": response}], fmt)


def _check(messages, fmt: str):
    if not isinstance(messages, list) or not messages:
        return None, "messages_not_a_list"
    clean = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            return None, "bad_role"
        if not isinstance(m.get("content"), str):
            return None, "content_not_string"
        if not m["content"].strip():
            return None, "empty_content"
        clean.append({"role": m["role"], "content": m["content"]})
    if not any(m["role"] == "user" for m in clean):
        return None, "no_user_turn"
    if clean[-1]["role"] != "assistant":
        return None, "no_assistant_turn_last"
    return clean, fmt


@dataclass(frozen=True, kw_only=True)
class SFTDataConfig:
    inputs: tuple[str, ...] = opt(help=".jsonl/.json/.parquet files, folders, or `datasets` folders", positional=True)
    output: str = opt(help="output folder (train.parquet, val.parquet, sft_report.json)", aliases=("-o",))
    prompt_field: str | None = opt(None, "field holding the user prompt (with --response-field)")
    response_field: str | None = opt(None, "field holding the assistant response (with --prompt-field)")
    val_fraction: float = opt(0.01, "share of conversations held out by a seeded hash")
    seed: int = opt(0, "seed of the held-out hash")
    split: str | None = opt(None, "split of a `datasets` folder saved with several; one is read", shown_default="train")


def run_sft_data(cfg: SFTDataConfig) -> dict:
    """Convert and write; the files appear in ``cfg.output`` only when the whole run succeeded."""
    from rlpt_verl.data_tools import refuse_output_inside

    refuse_output_inside(list(cfg.inputs), cfg.output)
    with staged_output(cfg.output) as out:
        return _sft_data(cfg, out)


def _sft_data(cfg: SFTDataConfig, output: str) -> dict:
    inputs, val_fraction, seed = cfg.inputs, cfg.val_fraction, cfg.seed
    prompt_field, response_field = cfg.prompt_field, cfg.response_field
    import pyarrow as pa

    from rlpt_verl.data_tools import ReaderConfig, RecordReader

    if not 0 <= val_fraction < 1:
        raise UserError("--val-fraction must be in [0, 1)")
    if bool(prompt_field) != bool(response_field):
        raise UserError("--prompt-field and --response-field go together")
    reader = RecordReader(list(inputs), ReaderConfig(split=cfg.split))
    schema = pa.schema([("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())])))])
    writers = {s: PoolWriter(os.path.join(output, f"{s}.parquet"), schema) for s in ("train", "val")}
    counts, formats, skipped = Counter(), Counter(), Counter()

    for _, record in reader:
        messages, info = to_messages(record, prompt_field, response_field)
        if messages is None:
            skipped[info] += 1
            continue
        formats[info] += 1
        split = "val" if held_out(seed, json.dumps(messages, sort_keys=True), val_fraction) else "train"
        writers[split].add({"messages": messages})
        counts[split] += 1
    if not counts["train"]:
        raise UserError(
            f"no usable conversation in {', '.join(inputs)} (skipped: {dict(skipped)}, read: "
            f"{dict(reader.stats.dropped)}); use messages, prompt/response or --prompt-field/--response-field"
        )
    for writer in writers.values():
        writer.close()
    report = {
        "records_read": reader.stats.forwarded + reader.stats.total_dropped,
        "skipped_at_read": dict(sorted(reader.stats.dropped.items())),
        "skipped": dict(sorted(skipped.items())),
        "files_skipped": dict(sorted(reader.files_skipped.items())),
        "files_skipped_examples": dict(sorted(reader.files_skipped_examples.items())),
        "formats": dict(sorted(formats.items())),
        "rows": {"train": counts["train"], "val": counts["val"]},
        "files": {"train": "train.parquet", "val": "val.parquet"},
        "dataset_splits": reader.dataset_splits,
    }
    write_json_atomic(os.path.join(output, SFT_REPORT), report, sort_keys=True)
    return report
