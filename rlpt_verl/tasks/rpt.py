"""`rlpt build-rpt`: corpus -> RPT next-token tasks at high-entropy positions (arXiv 2506.08007; verl 0.9.1).

Pass 1 picks the ``--val-docs`` validation documents by a seeded hash (a split by document). Pass 2
streams documents in chunks: the proxy LM scores every position of a chunk in batched windows
(:mod:`rpt_entropy`), positions above the threshold are sampled per document, and each becomes a
prompt whose context is the document up to the position, cut on the left at a policy-token boundary
only as far as the chat-templated budget needs. The ground truth is the next ``--continuation-tokens``
policy tokens with their cumulative byte lengths, so the reward never re-tokenises.

Positions live on the proxy's tokens; the task must start at a policy-token boundary, so a position
whose character offset is not one under the policy's tokenizer is dropped and counted
(``not_policy_token_boundary``; never happens when proxy and policy share a tokenizer).
"""

from __future__ import annotations

import bisect
import math
import os
import time
from collections import Counter
from dataclasses import dataclass

from rlpt_verl.data_tools import CorpusReader, Document, refuse_output_inside, splits_lines
from rlpt_verl.data_tools.readers import CorpusOptions, read_skip_hint
from rlpt_verl.errors import UserError
from rlpt_verl.options import opt
from rlpt_verl.paths import staged_output, write_json_atomic
from rlpt_verl.prompts import RPT_TEMPLATES, rpt_prompt
from rlpt_verl.reports import RPT_REPORT
from rlpt_verl.tasks.common import (
    VAL_DOCS_AUTO,
    PoolWriter,
    config_record,
    empty_validation_lines,
    percentiles,
    progress,
    prompt_tokens_line,
    row_schema,
    select_validation,
    skipped_line,
    wrote_line,
)
from rlpt_verl.tasks.prompt_meter import PromptMeter, load_tokenizer
from rlpt_verl.tasks.rpt_entropy import MAX_ENTROPY
from rlpt_verl.tasks.targets import doc_rng

# Validation difficulty splits (arXiv 2506.08007): nested, by proxy entropy.
VAL_SPLITS = (("easy", 0.5), ("medium", 1.0), ("hard", 1.5))
ENTROPY_BINS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5)


@dataclass(frozen=True, kw_only=True)
class RPTBuildConfig(CorpusOptions):
    tokenizer: str = opt(help="the policy's tokenizer (fast); prompts are measured with its chat template")
    proxy_model: str = opt(help="local folder of the small causal LM that scores positions")
    proxy_backend: str = opt(
        "hf",
        "`hf` (transformers, CPU or one GPU) or `vllm` (prompt log-probabilities, GPU scale)",
        choices=("hf", "vllm"),
    )
    template: str = opt(
        "v0", "RPT prompt (arXiv 2506.08007): `v0` (the paper's training template) or `v6`", choices=("v0", "v6")
    )
    max_prompt_tokens: int = opt(4096, "chat-templated prompt budget (the paper's max prompt)")
    chat_template_kwargs: dict = opt(help="JSON for `apply_chat_template`", factory=dict)
    entropy_threshold: float = opt(
        0.5, "training positions need more than this, nats (the paper gives none; 0.5 is its easiest validation bound)"
    )
    max_positions_per_doc: int = opt(16, "seeded sample per document (0 = all)")
    min_context_tokens: int = opt(16, "policy tokens of context a position needs")
    continuation_tokens: int = opt(16, "ground-truth tokens stored; longer predictions score 0 (`beyond_reference`)")
    val_docs: int | None = opt(None, "documents held out for the validation splits", shown_default=VAL_DOCS_AUTO)
    seed: int = opt(0, "position sampling, validation choice")
    window_tokens: int = opt(1024, "proxy forward-pass window")
    window_overlap: int = opt(256, "left context shared by adjacent windows: every position keeps at least this much")
    batch_tokens: int = opt(16384, "padded tokens per forward pass")
    device: str = opt("auto", "`auto` (cuda if available), `cpu`, `cuda`, `cuda:1`, ...")
    dtype: str = opt(
        "auto",
        "`auto` (bf16 on GPU, fp32 on CPU), `float32`, `bfloat16`, `float16`",
        choices=("auto", "float32", "bfloat16", "float16"),
    )
    chunk_docs: int = opt(
        64,
        "documents scored together (also ends at 4M characters): the chunk's tokens, offsets and entropies are "
        "held as Python lists, about 230 bytes per proxy token; memory does not grow with the corpus",
    )

    def validate(self) -> None:
        checks = [
            (self.template in RPT_TEMPLATES, f"--template must be one of {sorted(RPT_TEMPLATES)}"),
            (self.max_prompt_tokens > 0, "--max-prompt-tokens must be positive"),
            (self.entropy_threshold >= 0, "--entropy-threshold must be >= 0 (nats)"),
            (
                self.entropy_threshold < MAX_ENTROPY,
                f"--entropy-threshold {self.entropy_threshold} can never be exceeded: the top-16 entropy is at most "
                f"ln 16 = {MAX_ENTROPY:.2f} nats (the paper's bounds are 0.5, 1.0, 1.5)",
            ),
            (self.max_positions_per_doc >= 0, "--max-positions-per-doc must be >= 0 (0 = all)"),
            (self.min_context_tokens >= 1, "--min-context-tokens must be >= 1"),
            (self.continuation_tokens >= 1, "--continuation-tokens must be >= 1"),
            (self.val_docs is None or self.val_docs >= 0, "--val-docs must be >= 0"),
            (self.window_tokens >= 2, "--window-tokens must be >= 2"),
            (
                1 <= self.window_overlap < self.window_tokens,
                "--window-overlap must be >= 1 and < --window-tokens (with 0, a window's first position would be "
                "scored without any context)",
            ),
            (self.chunk_docs >= 1, "--chunk-docs must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)


def _ends(tokenizer, text: str) -> list[int]:
    """Sorted distinct character offsets at which a token of ``tokenizer`` ends.

    A token's span runs from the previous token's end to its own, so tokenizers whose offsets trim a
    leading space (SentencePiece's metaspace) still tile the text; the two halves of a character split
    across byte-level tokens share one end, which is the only boundary a string can reach.
    """
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ends, last = [], 0
    for _, e in enc["offset_mapping"]:
        if e > last:
            ends.append(e)
            last = e
    return ends


class RPTDocumentBuilder:
    """Turns one scored document into RPT rows (split, index and data_source set by the writer)."""

    def __init__(self, cfg: RPTBuildConfig, policy_tokenizer, proxy_tokenizer):
        self.cfg = cfg
        self.policy = policy_tokenizer
        self.proxy = proxy_tokenizer
        self.meter = PromptMeter(policy_tokenizer, cfg.chat_template_kwargs)
        self.fixed = self.meter.count_prompts([rpt_prompt("", cfg.template)])[0]
        if self.fixed >= cfg.max_prompt_tokens:
            raise UserError(
                f"--max-prompt-tokens {cfg.max_prompt_tokens} leaves no room for context: the {cfg.template} "
                f"template alone takes {self.fixed} tokens with the chat template"
            )

    def proxy_ids(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        enc = self.proxy(text, add_special_tokens=True, return_offsets_mapping=True)
        return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]

    def build(self, doc: Document, offsets, entropy: list[float], threshold: float) -> dict:
        """Rows for the positions of ``doc`` whose proxy entropy exceeds ``threshold``."""
        cfg = self.cfg
        out = {"rows": [], "dropped": Counter(), "scored": [], "above": 0}
        policy_ends = _ends(self.policy, doc.text)
        # Character offset at which proxy token p starts = where token p-1 ends (specials carry (0, 0)).
        candidates = []
        for p in range(1, len(offsets)):
            h = entropy[p]
            if math.isnan(h) or offsets[p] == (0, 0):
                continue  # a special token is never a target
            out["scored"].append(h)
            if h <= threshold:
                continue
            out["above"] += 1
            char = offsets[p - 1][1]
            if offsets[p][1] <= char:
                out["dropped"]["mid_character"] += 1  # the rest of a character split across byte tokens
                continue
            t = bisect.bisect_right(policy_ends, char)  # policy tokens wholly before the position
            if not t or policy_ends[t - 1] != char:
                out["dropped"]["not_policy_token_boundary" if char else "short_context"] += 1
                continue
            if t >= len(policy_ends):
                out["dropped"]["no_continuation"] += 1
                continue
            if t < cfg.min_context_tokens:
                out["dropped"]["short_context"] += 1
                continue
            next_token = doc.text[char : policy_ends[t]]
            if next_token.count("{") != next_token.count("}"):
                # \boxed{...} is read with matched braces: a token with a lone brace cannot be answered alone
                out["dropped"]["unbalanced_brace"] += 1
                continue
            candidates.append((p, char, t, h))
        if cfg.max_positions_per_doc and len(candidates) > cfg.max_positions_per_doc:
            rng = doc_rng(cfg.seed, doc.text)
            candidates = sorted(rng.sample(candidates, cfg.max_positions_per_doc))
        for p, char, t, h in candidates:
            row = self._row(doc, policy_ends, p, char, t, h)
            if row is None:
                out["dropped"]["prompt_too_long"] += 1
            else:
                out["rows"].append(row)
        return out

    def _fit(self, text: str, policy_ends: list[int], char: int, t: int) -> tuple[int, int] | None:
        """(first context token, prompt tokens) for the smallest left cut that fits the budget."""
        budget = self.cfg.max_prompt_tokens
        counts: dict[int, int] = {}

        def count(s: int) -> int:
            if s not in counts:
                start = policy_ends[s - 1] if s else 0
                counts[s] = self.meter.count_prompts([rpt_prompt(text[start:char], self.cfg.template)])[0]
            return counts[s]

        s = max(0, t - (budget - self.fixed))
        while s < t and count(s) > budget:
            s += max(1, count(s) - budget)
        if s >= t:
            return None
        while s > 0:  # grow back while it still fits: cut only as far as needed
            s2 = max(0, s - max(1, budget - count(s)))
            if count(s2) > budget:
                if s2 == s - 1 or count(s - 1) > budget:
                    break
                s2 = s - 1
            s = s2
        return s, count(s)

    def _row(self, doc: Document, policy_ends: list[int], p: int, char: int, t: int, h: float) -> dict | None:
        fit = self._fit(doc.text, policy_ends, char, t)
        if fit is None:
            return None
        s, n_tok = fit
        start = policy_ends[s - 1] if s else 0
        stop = min(t + self.cfg.continuation_tokens, len(policy_ends))
        continuation = doc.text[char : policy_ends[stop - 1]]
        byte_ends = [len(doc.text[char:e].encode("utf-8")) for e in policy_ends[t:stop]]
        return {
            "data_source": "rpt",
            "prompt": [{"role": "user", "content": rpt_prompt(doc.text[start:char], self.cfg.template)}],
            "ability": "rpt",
            "reward_model": {"style": "rule", "ground_truth": continuation, "token_byte_ends": byte_ends},
            "extra_info": {
                "index": -1,
                "split": "",
                "doc_id": doc.id,
                "source": doc.source,
                "char_offset": char,
                "proxy_position": p,
                "policy_position": t,
                "entropy": float(h),
                "next_token": doc.text[char : policy_ends[t]],
                "context_tokens": t - s,
                "context_truncated": s > 0,
                "context_cut_chars": start,
                "prompt_tokens": n_tok,
            },
        }


def parquet_schema():
    import pyarrow as pa

    return row_schema(
        pa.struct([("style", pa.string()), ("ground_truth", pa.string()), ("token_byte_ends", pa.list_(pa.int32()))]),
        pa.struct(
            [
                ("index", pa.int64()),
                ("split", pa.string()),
                ("doc_id", pa.string()),
                ("source", pa.string()),
                ("char_offset", pa.int64()),
                ("proxy_position", pa.int32()),
                ("policy_position", pa.int32()),
                ("entropy", pa.float64()),
                ("next_token", pa.string()),
                ("context_tokens", pa.int32()),
                ("context_truncated", pa.bool_()),
                ("context_cut_chars", pa.int64()),
                ("prompt_tokens", pa.int32()),
            ]
        ),
    )


CHUNK_CHARS = 4_000_000  # ≈ 1M proxy tokens ≈ 230 MB of per-token Python lists per chunk


def doc_chunks(docs, max_docs: int, max_chars: int):
    """Consecutive lists of documents, closed at ``max_docs`` documents or ``max_chars`` characters.

    A chunk is held in memory as per-token Python lists while it is scored; documents up to
    ``--max-doc-chars`` (1M) each would make 64 of them several GB, so characters bound it too.

    >>> from types import SimpleNamespace as D
    >>> [[d.text for d in c] for c in doc_chunks([D(text="ab"), D(text="cd"), D(text="e"), D(text="f")], 3, 3)]
    [['ab', 'cd'], ['e', 'f']]
    """
    chunk, chars = [], 0
    for doc in docs:
        chunk.append(doc)
        chars += len(doc.text)
        if len(chunk) >= max_docs or chars >= max_chars:
            yield chunk
            chunk, chars = [], 0
    if chunk:
        yield chunk


def entropy_bins(values) -> Counter:
    """Counts per ENTROPY_BINS bin (by bin index): the corpus histogram is kept as counts, never as values
    (a list of every scored entropy would cost ≈ 32 GB per billion proxy tokens).

    >>> entropy_bins([0.1, 0.3, 0.2999, 9.0]) == Counter({0: 1, 1: 2, 7: 1})
    True
    """
    return Counter(bisect.bisect_right(ENTROPY_BINS, round(v, 3)) - 1 for v in values)


def _histogram(counts: Counter) -> dict:
    labels = [f"[{a}, {b})" for a, b in zip(ENTROPY_BINS, ENTROPY_BINS[1:], strict=False)] + [f">= {ENTROPY_BINS[-1]}"]
    return {labels[i]: counts.get(i, 0) for i in range(len(labels))}


def run_build_rpt(cfg: RPTBuildConfig, quiet: bool = False, scorer=None) -> dict:
    """Write train.parquet, val_{easy,medium,hard}.parquet and the report; returns the report dict. The files
    appear in ``cfg.output`` only when the whole build succeeded."""
    cfg.validate()
    refuse_output_inside(list(cfg.inputs), cfg.output)
    with staged_output(cfg.output) as out:
        return _build_rpt(cfg, out, quiet, scorer)


def _build_rpt(cfg: RPTBuildConfig, out: str, quiet: bool, scorer) -> dict:
    from rlpt_verl.tasks.rpt_entropy import check_device, make_scorer

    reader_cfg = cfg.reader_config()
    CorpusReader(list(cfg.inputs), reader_cfg)  # fail fast on bad paths before loading models
    t0 = time.perf_counter()
    if scorer is None:
        check_device(cfg.device, cfg.proxy_backend)
    if cfg.proxy_backend == "hf" and not os.path.isdir(cfg.proxy_model):
        raise UserError(
            f"--proxy-model {cfg.proxy_model!r} is not a folder: pass a local Hugging Face causal LM folder"
        )
    policy = load_tokenizer(cfg.tokenizer)
    same = os.path.abspath(cfg.proxy_model) == os.path.abspath(cfg.tokenizer)
    try:
        proxy = policy if same else load_tokenizer(cfg.proxy_model)
    except UserError:
        raise UserError(
            f"cannot load the tokenizer of --proxy-model {cfg.proxy_model!r}: the folder needs one"
        ) from None
    for name, tok in (("--tokenizer", policy), ("--proxy-model", proxy)):
        if not getattr(tok, "is_fast", False):
            raise UserError(f"{name} needs a fast (Rust) tokenizer for character offsets; this one is not")
    builder = RPTDocumentBuilder(cfg, policy, proxy)
    scorer = scorer or make_scorer(
        cfg.proxy_backend,
        cfg.proxy_model,
        cfg.window_tokens,
        cfg.window_overlap,
        cfg.batch_tokens,
        cfg.device,
        cfg.dtype,
    )

    # Pass 1: validation documents = the --val-docs smallest seeded hashes among documents long enough.
    min_chars = 4 * cfg.min_context_tokens
    val_ordinals = select_validation(
        CorpusReader(list(cfg.inputs), reader_cfg), cfg.val_docs, cfg.seed, lambda doc: len(doc.text) >= min_chars
    )
    val_threshold = min(th for _, th in VAL_SPLITS)

    # Pass 2: score, select, write.
    names = ["train"] + [f"val_{name}" for name, _ in VAL_SPLITS]
    writers = {n: PoolWriter(os.path.join(out, f"{n}.parquet"), schema=parquet_schema()) for n in names}
    reader = CorpusReader(list(cfg.inputs), reader_cfg)
    drops, doc_skips, docs_per_split = Counter(), Counter(), Counter()
    hist_prompt, hist_entropy = Counter(), Counter()
    positions_scored = positions_above = tokens_scored = index = ordinal = 0
    for chunk in doc_chunks(progress(reader, "build-rpt", quiet), cfg.chunk_docs, CHUNK_CHARS):
        encoded = [builder.proxy_ids(doc.text) for doc in chunk]
        entropies = scorer.score([ids for ids, _ in encoded])
        tokens_scored += sum(len(ids) for ids, _ in encoded)
        for doc, (_, offsets), ent in zip(chunk, encoded, entropies, strict=True):
            split = "val" if ordinal in val_ordinals else "train"
            ordinal += 1
            res = builder.build(doc, offsets, ent, val_threshold if split == "val" else cfg.entropy_threshold)
            positions_scored += len(res["scored"])
            positions_above += res["above"]
            hist_entropy.update(entropy_bins(res["scored"]))
            drops.update(res["dropped"])
            if not res["rows"]:
                doc_skips["no_position_above_threshold" if not res["above"] else "no_usable_position"] += 1
                continue
            docs_per_split[split] += 1
            for row in res["rows"]:
                e = row["extra_info"]
                targets = ["train"] if split == "train" else [f"val_{n}" for n, th in VAL_SPLITS if e["entropy"] > th]
                for name in targets:  # a validation row goes to every difficulty it passes (nested)
                    source = "rpt" if name == "train" else f"rpt_{name[4:]}"
                    writers[name].add(
                        {**row, "data_source": source, "extra_info": {**e, "index": index, "split": name}}
                    )
                    index += 1
                    hist_prompt[e["prompt_tokens"]] += 1
    for w in writers.values():
        w.close()

    if not writers["train"].count:
        if docs_per_split["val"] and not docs_per_split["train"]:
            raise UserError(
                f"no training rows from {', '.join(cfg.inputs)}: all {docs_per_split['val']} usable documents went "
                f"to validation (--val-docs {'default' if cfg.val_docs is None else cfg.val_docs}); lower "
                "--val-docs or add documents"
            )
        fix = read_skip_hint(reader.stats.dropped, reader_cfg) if not reader.stats.forwarded else None
        raise UserError(
            f"no training rows from {', '.join(cfg.inputs)}: documents read {reader.stats.forwarded}, skipped "
            f"{dict(doc_skips)} (at read {dict(reader.stats.dropped)}), positions above {cfg.entropy_threshold}: "
            f"{positions_above}, dropped {dict(drops)}; "
            + (
                fix
                or "lower --entropy-threshold or --min-context-tokens, raise --max-prompt-tokens, or check --text-field"
            )
        )
    seconds = time.perf_counter() - t0
    report = {
        "config": config_record(cfg),
        "documents": {
            "read": reader.stats.forwarded + reader.stats.total_dropped,
            "skipped_at_read": dict(sorted(reader.stats.dropped.items())),
            "skipped_at_build": dict(sorted(doc_skips.items())),
            "used_per_split": dict(sorted(docs_per_split.items())),
        },
        "files_skipped": dict(sorted(reader.files_skipped.items())),
        "files_skipped_examples": dict(sorted(reader.files_skipped_examples.items())),
        "dataset_splits": reader.dataset_splits,
        "proxy_tokens_scored": tokens_scored,
        "positions": {
            "scored": positions_scored,
            "above_threshold": positions_above,
            "dropped": dict(sorted(drops.items())),
            "entropy_histogram": _histogram(hist_entropy),
        },
        "samples": {n: w.count for n, w in writers.items()},
        "prompt_tokens": percentiles(hist_prompt),
        "files": {n: f"{n}.parquet" for n in names},
        "val_splits": {f"rpt_{n}": f"entropy > {th}" for n, th in VAL_SPLITS},
    }
    write_json_atomic(os.path.join(out, RPT_REPORT), report, sort_keys=True)
    report["_seconds"] = seconds
    return report


def format_summary(report: dict, output: str) -> str:
    d, pos = report["documents"], report["positions"]
    return "\n".join(
        [
            f"documents read: {d['read']}, used: {d['used_per_split']}",
            skipped_line(d, report["files_skipped"], report.get("files_skipped_examples")),
            *splits_lines(report.get("dataset_splits")),
            f"proxy tokens scored: {report['proxy_tokens_scored']} in {report.get('_seconds', 0):.1f}s",
            f"positions scored: {pos['scored']}, above threshold: {pos['above_threshold']}, dropped: {pos['dropped']}",
            "samples: " + ", ".join(f"{k}={v}" for k, v in report["samples"].items()),
            prompt_tokens_line(report["prompt_tokens"], report["config"]["max_prompt_tokens"]),
            wrote_line(report["files"].values(), RPT_REPORT, output),
            *empty_validation_lines(
                {f"{k}.parquet": v for k, v in report["samples"].items() if k.startswith("val_")},
                "add documents or raise --val-docs (a harder split needs positions above its entropy bound)",
            ),
        ]
    )
