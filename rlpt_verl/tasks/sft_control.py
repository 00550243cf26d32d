"""`rlpt build-sft`: an `rlpt build` folder -> the compute-matched SFT control, as verl SFT data.

Every ASR and MSR row becomes one conversation: the same user prompt the RL policy sees, and as the
assistant turn the true segment s_i between the prediction tags (what the RLPT reward asks for), so SFT and
RLPT learn from the same documents, contexts and targets; the train/val split is the build's. The token
count of every conversation is in the report, so a run can be sized to an RLPT run's compute
(docs/comparison.md shows the arithmetic; recipe ``sft_rlpt_control``).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

from rlpt_verl.errors import UserError
from rlpt_verl.options import opt
from rlpt_verl.paths import staged_output, write_json_atomic
from rlpt_verl.prompts import PRED_CLOSE, PRED_OPEN
from rlpt_verl.reports import SFT_REPORT
from rlpt_verl.tasks.common import PoolWriter

TASKS = ("asr", "msr")


def control_messages(row: dict) -> list[dict] | None:
    """The SFT conversation of one RLPT row: its prompt, then the true segment in the prediction tags.

    >>> control_messages({"prompt": [{"role": "user", "content": "Q"}], "extra_info": {"target": "A."}})[1]
    {'role': 'assistant', 'content': '<|startofprediction|>A.<|endofprediction|>'}
    """
    target = (row.get("extra_info") or {}).get("target")
    prompt = row.get("prompt") or []
    if not isinstance(target, str) or not target.strip() or not prompt:
        return None
    messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in prompt]
    return [*messages, {"role": "assistant", "content": f"{PRED_OPEN}{target}{PRED_CLOSE}"}]


@dataclass(frozen=True, kw_only=True)
class SFTControlConfig:
    rlpt_data: str = opt(help="an `rlpt build` output folder (its ASR and MSR rows)", positional=True)
    output: str = opt(help="output folder (train.parquet, val.parquet, sft_report.json)", aliases=("-o",))
    tokenizer: str | None = opt(None, "count each conversation's chat-templated tokens (for the compute match)")


def run_build_sft(cfg: SFTControlConfig, quiet: bool = False) -> dict:
    """Write the control's conversations; files appear in ``cfg.output`` only when the whole run succeeded."""
    found = [t for t in TASKS if os.path.isfile(os.path.join(cfg.rlpt_data, f"train_{t}.parquet"))]
    if not found:
        raise UserError(
            f"{cfg.rlpt_data} has no train_asr.parquet or train_msr.parquet: give the output folder of `rlpt build`"
        )
    if os.path.abspath(cfg.output) == os.path.abspath(cfg.rlpt_data):
        raise UserError("--output must not be the `rlpt build` folder it reads")
    with staged_output(cfg.output) as out:
        return _build(cfg, found, out, quiet)


def _build(cfg: SFTControlConfig, tasks: list[str], out: str, quiet: bool) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    tokenizer = None
    if cfg.tokenizer:
        from rlpt_verl.tasks.prompt_meter import load_tokenizer

        tokenizer = load_tokenizer(cfg.tokenizer)
    schema = pa.schema([("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())])))])
    rows, dropped, tokens, answer_tokens = Counter(), Counter(), Counter(), Counter()
    for split in ("train", "val"):
        writer = PoolWriter(os.path.join(out, f"{split}.parquet"), schema)
        for task in tasks:
            path = os.path.join(cfg.rlpt_data, f"{split}_{task}.parquet")
            if not os.path.isfile(path):
                continue
            for row in tqdm(pq.read_table(path).to_pylist(), desc=f"sft {split}_{task}", disable=quiet, unit="row"):
                messages = control_messages(row)
                if messages is None:
                    dropped[f"{task}_no_target"] += 1
                    continue
                writer.add({"messages": messages})
                rows[f"{split}_{task}"] += 1
                if tokenizer is not None:
                    ids = tokenizer.apply_chat_template(messages, tokenize=True)
                    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
                    tokens[split] += len(ids)
                    answer_tokens[split] += len(
                        tokenizer(messages[-1]["content"], add_special_tokens=False)["input_ids"]
                    )
        writer.close()
    train = sum(v for k, v in rows.items() if k.startswith("train_"))
    if not train:
        raise UserError(f"no conversation from {cfg.rlpt_data} (dropped: {dict(dropped)})")
    report = {
        "source": os.path.abspath(cfg.rlpt_data),
        "rows": dict(sorted(rows.items())),
        "dropped": dict(sorted(dropped.items())),
        "files": {"train": "train.parquet", "val": "val.parquet"},
        "tokens": dict(tokens) if tokenizer is not None else None,  # whole conversations, chat-templated
        "answer_tokens": dict(answer_tokens) if tokenizer is not None else None,  # the assistant turns only
    }
    write_json_atomic(os.path.join(out, SFT_REPORT), report, sort_keys=True)
    return report


def format_summary(report: dict, output: str) -> str:
    tokens = f"; {report['tokens']['train']} training tokens" if report.get("tokens") else ""
    return (
        f"SFT control: {report['rows']} conversations (dropped: {report['dropped'] or 'none'}){tokens}; wrote "
        f"train.parquet, val.parquet and {SFT_REPORT} in {output}"
    )
