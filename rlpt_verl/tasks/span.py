"""`rlpt build-span`: an `rlpt build` folder -> masked-span tasks, the judge-free control for RLPT.

Each MSR row of the build (its context, target sentence s_i and next segment s_{i+1}, already segmented,
split by document and fitted to the token budget) becomes one span row: a few consecutive words of s_i are
replaced by ``<MASK>`` and the material is context, s_i with the mask, then s_{i+1}, in an MSR-style
prompt (:data:`rlpt_verl.prompts.SPAN_TEMPLATE`). The masked words are the ground truth, scored by the
``span`` reward manager (exact match after normalisation). Same documents, same train/val split, same
budget as the RLPT run it controls: matched by construction.

The span rule (:func:`choose_span`, seeded per row by the seed and the row's text, never a file name): L
words, L uniform in [min, max] and at most the sentence's words minus one (a word of s_i always stays
visible), at a uniform start among the sentence's whitespace-separated words.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from dataclasses import dataclass

from rlpt_verl.errors import UserError
from rlpt_verl.options import opt
from rlpt_verl.paths import staged_output, write_json_atomic
from rlpt_verl.prompts import MSR_TEMPLATE, msr_prompt, span_prompt
from rlpt_verl.tasks.common import PoolWriter

SPAN_REPORT = "span_report.json"
DATA_SOURCE = "rlpt_span"
MASK = "<MASK>"
_MSR_HEAD, _MSR_MID = MSR_TEMPLATE.split("{next_step}")[0].split("{prompt}")
_MSR_TAIL = MSR_TEMPLATE.split("{next_step}")[1]


def choose_span(sentence: str, rng: random.Random, min_words: int, max_words: int) -> tuple[int, int] | None:
    """(start, end) character offsets of the masked words in ``sentence``, or None when it has too few words.

    >>> s = "The committee approved the new budget on Monday."
    >>> a, b = choose_span(s, random.Random(0), 2, 3); s[a:b]
    'the new budget'
    >>> choose_span("Too short.", random.Random(0), 2, 3) is None
    True
    """
    import re

    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", sentence)]
    longest = min(max_words, len(words) - 1)
    if longest < min_words:
        return None
    length = rng.randint(min_words, longest)
    first = rng.randint(0, len(words) - length)
    return words[first][0], words[first + length - 1][1]


def msr_parts(content: str, next_segment: str) -> str | None:
    """The context of an MSR prompt built by `rlpt build` (its message text and stored s_{i+1}), or None when
    the text is not that template's.

    >>> msr_parts(msr_prompt("Before.", "After."), "After.")
    'Before.'
    """
    end = len(content) - len(_MSR_TAIL) - len(next_segment) - len(_MSR_MID)
    context = content[len(_MSR_HEAD) : end] if end >= len(_MSR_HEAD) else None
    return context if context is not None and msr_prompt(context, next_segment) == content else None


def parquet_schema():
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    extra = pa.struct(
        [
            ("index", pa.int64()),
            ("split", pa.string()),
            ("doc_id", pa.string()),
            ("source", pa.string()),
            ("segment_index", pa.int64()),
            ("num_segments", pa.int64()),
            ("task", pa.string()),
            ("target", pa.string()),
            ("span_start", pa.int64()),
            ("span_end", pa.int64()),
            ("span_words", pa.int64()),
            ("prompt_tokens", pa.int64()),
        ]
    )
    return pa.schema(
        [
            ("data_source", pa.string()),
            ("prompt", pa.list_(message)),
            ("ability", pa.string()),
            ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
            ("extra_info", extra),
        ]
    )


def span_row(row: dict, seed: int, min_words: int, max_words: int) -> tuple[dict | None, str]:
    """(span row, "") from an MSR row of `rlpt build`, or (None, reason)."""
    info = row.get("extra_info") or {}
    target, next_segment = info.get("target"), info.get("next_segment")
    if not isinstance(target, str) or not isinstance(next_segment, str):
        return None, "not_an_msr_row"
    context = msr_parts(row["prompt"][-1]["content"], next_segment)
    if context is None:
        return None, "prompt_not_msr_template"
    # seeded by the text itself, never by a file name or path: the same corpus gives the same spans anywhere
    rng = random.Random(f"{seed}\x00{context}\x00{target}\x00{next_segment}")
    cut = choose_span(target, rng, min_words, max_words)
    if cut is None:
        return None, "target_too_few_words"
    if MASK in context or MASK in target or MASK in next_segment:
        return None, "text_contains_mask"  # the policy could not tell which <MASK> to fill
    a, b = cut
    material = f"{context}\n\n{target[:a]}{MASK}{target[b:]}\n\n{next_segment}"
    content = span_prompt(material)
    return {
        "data_source": DATA_SOURCE,
        "prompt": [{"role": "user", "content": content}],
        "ability": "rlpt",
        "reward_model": {"style": "rule", "ground_truth": target[a:b]},
        "extra_info": {
            **{k: info.get(k) for k in ("index", "split", "doc_id", "source", "segment_index", "num_segments")},
            "task": "span",
            "target": target,
            "span_start": a,
            "span_end": b,
            "span_words": len(target[a:b].split()),
            "prompt_tokens": 0,
        },
    }, ""


@dataclass(frozen=True, kw_only=True)
class SpanBuildConfig:
    rlpt_data: str = opt(
        help="an `rlpt build` output folder: its MSR rows give contexts and sentences", positional=True
    )
    output: str = opt(help="output folder (train_span.parquet, val_span.parquet, span_report.json)", aliases=("-o",))
    tokenizer: str = opt(help="the policy's tokenizer (the one `rlpt build` used): prompts are re-counted")
    max_prompt_tokens: int = opt(
        2048, "span prompts over this many chat-templated tokens are dropped and counted", low=1
    )
    min_span_words: int = opt(2, "fewest words in a masked span", low=1)
    max_span_words: int = opt(4, "most words in a masked span", low=1)
    seed: int = opt(0, "span choice (per row: this seed and the row's text, never its file name)")
    chat_template_kwargs: dict = opt(help="JSON for `apply_chat_template`, as `rlpt build` used", factory=dict)


def run_build_span(cfg: SpanBuildConfig, quiet: bool = False) -> dict:
    """Write span rows for every MSR row; files appear in ``cfg.output`` only when the whole run succeeded."""
    if cfg.min_span_words > cfg.max_span_words:
        raise UserError(f"--min-span-words {cfg.min_span_words} is more than --max-span-words {cfg.max_span_words}")
    sources = {s: os.path.join(cfg.rlpt_data, f"{s}_msr.parquet") for s in ("train", "val")}
    if not os.path.isfile(sources["train"]):
        raise UserError(
            f"{cfg.rlpt_data} has no train_msr.parquet: give the output folder of `rlpt build` (its MSR rows are "
            "the span tasks' source)"
        )
    if os.path.abspath(cfg.output) == os.path.abspath(cfg.rlpt_data):
        raise UserError("--output must not be the `rlpt build` folder it reads")
    with staged_output(cfg.output) as out:
        return _build_span(cfg, sources, out, quiet)


def _build_span(cfg: SpanBuildConfig, sources: dict, out: str, quiet: bool) -> dict:
    import pyarrow.parquet as pq
    from tqdm import tqdm

    from rlpt_verl.tasks.prompt_meter import PromptMeter, load_tokenizer

    meter = PromptMeter(load_tokenizer(cfg.tokenizer), cfg.chat_template_kwargs)
    dropped, rows_out, read = Counter(), Counter(), Counter()
    for split, path in sources.items():
        if not os.path.isfile(path):
            continue
        table = pq.read_table(path)
        writer = PoolWriter(os.path.join(out, f"{split}_span.parquet"), parquet_schema())
        built = []
        for row in tqdm(table.to_pylist(), desc=f"span {split}", disable=quiet, unit="row"):
            read[split] += 1
            new, reason = span_row(row, cfg.seed, cfg.min_span_words, cfg.max_span_words)
            if new is None:
                dropped[reason] += 1
                continue
            built.append(new)
        counts = meter.count_prompts([r["prompt"][-1]["content"] for r in built]) if built else []
        for new, n_tok in zip(built, counts, strict=True):
            if n_tok > cfg.max_prompt_tokens:
                dropped["prompt_too_long"] += 1
                continue
            new["extra_info"]["prompt_tokens"] = n_tok
            new["extra_info"]["index"] = rows_out[split]
            writer.add(new)
            rows_out[split] += 1
        writer.close()
    if not rows_out["train"]:
        raise UserError(f"no span task from {sources['train']} (dropped: {dict(dropped)})")
    report = {
        "source": os.path.abspath(cfg.rlpt_data),
        "rows_read": dict(read),
        "rows": {"train": rows_out["train"], "val": rows_out["val"]},
        "dropped": dict(sorted(dropped.items())),
        "files": {s: f"{s}_span.parquet" for s in ("train", "val") if s in read},
        "settings": {
            "min_span_words": cfg.min_span_words,
            "max_span_words": cfg.max_span_words,
            "seed": cfg.seed,
            "max_prompt_tokens": cfg.max_prompt_tokens,
        },
    }
    write_json_atomic(os.path.join(out, SPAN_REPORT), report, sort_keys=True)
    return report


def format_summary(report: dict, output: str) -> str:
    return (
        f"span tasks: {report['rows']['train']} train, {report['rows']['val']} val rows from "
        f"{sum(report['rows_read'].values())} MSR rows (dropped: {report['dropped'] or 'none'}); wrote "
        f"{', '.join(report['files'].values())} and {SPAN_REPORT} in {output}"
    )
