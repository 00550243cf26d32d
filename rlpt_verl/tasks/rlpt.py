"""`rlpt build`: corpus -> RLPT ASR/MSR tasks in verl's RLHFDataset format (arXiv 2509.19249; verl 0.9.1).

Two streaming passes over the inputs: pass 1 ranks usable documents by a seeded hash to pick the
validation documents (a split by document, with O(--val-docs) memory); pass 2 segments, fits every
prompt into the token budget and writes parquet row groups as it goes.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate

from rlpt_verl.data_tools import CorpusReader, Document, refuse_output_inside, splits_lines
from rlpt_verl.data_tools.readers import CorpusOptions, read_skip_hint
from rlpt_verl.errors import UserError
from rlpt_verl.options import opt
from rlpt_verl.paths import staged_output, write_json_atomic
from rlpt_verl.prompts import asr_prompt, msr_prompt
from rlpt_verl.reports import RLPT_REPORT
from rlpt_verl.segment import join_segments, split_sentences
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
    windows,
    wrote_line,
)
from rlpt_verl.tasks.prompt_meter import PromptMeter, load_tokenizer
from rlpt_verl.tasks.targets import context_start, doc_rng, eligible_targets, reference_text, sample_targets

TASKS = ("asr", "msr")
# Tokens by which a sum of per-segment counts may overcount a prompt (observed: at most 2 with
# byte-level BPE): a context is grown by one more segment only if its estimate is within this margin.
GROW_MARGIN = 4
DATA_SOURCE = {"asr": "rlpt_asr", "msr": "rlpt_msr"}


@dataclass(frozen=True, kw_only=True)
class BuildConfig(CorpusOptions):
    tokenizer: str = opt(help="the policy's tokenizer: a local folder or a name already in the HF cache")
    max_prompt_tokens: int = opt(
        2048, "every written prompt fits this many chat-templated tokens (set `data.max_prompt_length` to it)"
    )
    chat_template_kwargs: dict = opt(
        help="JSON for `apply_chat_template`, the same as verl's `data.apply_chat_template_kwargs`", factory=dict
    )
    reference_segments: int = opt(3, "ASR judge reference = the target sentence and the next k-1 segments")
    msr_reference_segments: int = opt(1, "MSR judge reference segments (s_{i+1} is already in the prompt)")
    max_reference_tokens: int = opt(
        768,
        "judge references keep whole segments within this many tokens; longer target sentences are dropped and counted",
    )
    min_target_chars: int = opt(20, "shorter sentences are never targets (they stay in contexts)", low=1)
    max_targets_per_doc: int = opt(0, "sample at most N targets per document, seeded (0 = all)")
    val_docs: int | None = opt(
        None, "documents held out for validation (split by document)", shown_default=VAL_DOCS_AUTO
    )
    val_max_rows: int = opt(
        4000,
        "validation rows at most (half ASR, half MSR; extra rows of the held-out documents are dropped and "
        "counted): verl sends all of validation at once, rows × `val_kwargs.n` must fit TransferQueue",
    )
    seed: int = opt(0, "target sampling, validation choice")
    workers: int = opt(1, "processes on this machine; output is identical for any value", low=1)
    language: str = "english"

    def validate(self) -> None:
        checks = [
            (self.max_prompt_tokens > 0, "--max-prompt-tokens must be positive"),
            (self.reference_segments >= 1, "--reference-segments must be >= 1"),
            (self.msr_reference_segments >= 1, "--msr-reference-segments must be >= 1"),
            (self.max_reference_tokens >= 1, "--max-reference-tokens must be >= 1"),
            (self.min_target_chars >= 0, "--min-target-chars must be >= 0"),
            (self.max_targets_per_doc >= 0, "--max-targets-per-doc must be >= 0 (0 = all)"),
            (self.val_docs is None or self.val_docs >= 0, "--val-docs must be >= 0"),
            (self.val_max_rows >= 2, "--val-max-rows must be >= 2 (one row per task)"),
            (self.workers >= 1, "--workers must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)


# ---------------------------------------------------------------------------------------------
# Per-document work (runs in worker processes when --workers > 1)
# ---------------------------------------------------------------------------------------------
class DocumentBuilder:
    """Turns one document into fitted ASR and MSR rows (without split/index, set by the writer)."""

    def __init__(self, cfg: BuildConfig, meter: PromptMeter | None = None):
        self.cfg = cfg
        self.meter = meter or PromptMeter(load_tokenizer(cfg.tokenizer), cfg.chat_template_kwargs)
        self.asr_fixed = self.meter.count_prompts([asr_prompt("")])[0]
        self.msr_fixed = self.meter.count_prompts([msr_prompt("", "")])[0]

    def usable(self, doc: Document, probe_chars: int = 20_000) -> bool:
        """Whether the document yields at least one target (its prompts may still overflow).

        Segmentation is line-by-line and never looks past a blank line, so segmenting the text up to a
        paragraph break yields the document's first segments (the last one may be cut short): a long
        enough non-final one there settles the question without segmenting the whole document.
        """
        cut = doc.text.rfind("\n\n", 0, probe_chars) if len(doc.text) > probe_chars else -1
        if cut > 0:
            head = split_sentences(doc.text[:cut], self.cfg.language)
            if any(len(head[j].text) >= self.cfg.min_target_chars for j in range(1, len(head) - 2)):
                return True
        segs = split_sentences(doc.text, self.cfg.language)
        return bool(eligible_targets(segs, self.cfg.min_target_chars))

    def build(self, doc: Document) -> dict:
        cfg = self.cfg
        segs = split_sentences(doc.text, cfg.language)
        out = {
            "segments": len(segs),
            "rows": {t: [] for t in TASKS},
            "dropped": Counter(),
            "skip": None,
            "capped": Counter(),
        }
        if len(segs) < 3:
            out["skip"] = "too_few_sentences"
            return out
        targets = eligible_targets(segs, cfg.min_target_chars)
        if not targets:
            out["skip"] = "no_target_long_enough"
            return out
        targets = sample_targets(targets, cfg.max_targets_per_doc, doc_rng(cfg.seed, doc.text))
        prefix = self.meter.segment_token_prefix(segs)
        # A judge reference must fit the judge: a target sentence longer than the cap is never a target
        # (a 389k-character unpunctuated "sentence" was seen in the wild); longer references lose segments.
        long_targets = [j for j in targets if prefix[j + 1] - prefix[j] > cfg.max_reference_tokens]
        if long_targets:
            for task in TASKS:
                out["dropped"][f"{task}_target_too_long"] += len(long_targets)
            targets = [j for j in targets if j not in set(long_targets)]
            if not targets:
                out["skip"] = "only_overlong_targets"
                return out
        out["references"] = {t: self._reference_sizes(t, segs, targets, prefix) for t in TASKS}
        ends = list(accumulate(len(sg.sep if i else "") + len(sg.text) for i, sg in enumerate(segs)))
        for task in TASKS:
            fits = self._fit(task, segs, targets, prefix, out["dropped"])
            for j, (start, content, n_tok) in sorted(fits.items()):
                cut_chars = ends[start - 1] if start else 0
                k = out["references"][task][j]
                out["capped"][task] += k < min(self._k(task), len(segs) - j)
                out["rows"][task].append(self._row(task, doc, segs, j, k, start, content, n_tok, cut_chars))
        return out

    def _k(self, task: str) -> int:
        return self.cfg.reference_segments if task == "asr" else self.cfg.msr_reference_segments

    def _reference_sizes(self, task: str, segs, targets: list[int], prefix: list[int]) -> dict[int, int]:
        """Segments in each target's judge reference: up to k, as many as fit ``max_reference_tokens``."""
        sizes = {}
        for j in targets:
            k = min(self._k(task), len(segs) - j)
            while k > 1 and prefix[j + k] - prefix[j] > self.cfg.max_reference_tokens:
                k -= 1
            sizes[j] = k
        return sizes

    def _fit(self, task: str, segs, targets: list[int], prefix: list[int], dropped: Counter) -> dict:
        """For each target, the smallest context start whose exact prompt fits the budget.

        Token estimates are sums of per-segment counts; exact counts decide. We
        shrink while the exact count overflows, and grow while the estimate says one more segment
        might still fit (within ``GROW_MARGIN`` tokens of estimate error), so contexts are cut only
        as far as needed without re-tokenising every candidate.
        """
        budget = self.cfg.max_prompt_tokens

        def estimate(j: int, start: int) -> int:
            fixed = self.asr_fixed if task == "asr" else self.msr_fixed + prefix[j + 2] - prefix[j + 1]
            return fixed + prefix[j] - prefix[start]

        def fixed_budget(j: int) -> int:
            return budget - estimate(j, j)

        best: dict[int, tuple[int, str, int]] = {}
        pending: dict[int, tuple[str, int]] = {}  # j -> (phase, candidate start)
        for j in targets:
            start = context_start(prefix, j, fixed_budget(j))
            if start is None:  # not even the previous segment fits by estimate: try it exactly once
                start = j - 1
            pending[j] = ("shrink", start)
        while pending:
            items = sorted(pending.items())
            contents = [self._content(task, segs, j, start) for j, (_, start) in items]
            lengths = self.meter.count_prompts(contents)
            pending = {}
            for (j, (phase, start)), content, n_tok in zip(items, contents, lengths, strict=True):
                if n_tok <= budget:
                    best[j] = (start, content, n_tok)
                    if start > 0 and estimate(j, start - 1) <= budget + GROW_MARGIN:
                        pending[j] = ("grow", start - 1)
                elif phase == "shrink" and start + 1 < j:
                    pending[j] = ("shrink", start + 1)
                elif phase == "shrink":
                    dropped[f"{task}_prompt_too_long"] += 1
        return best

    @staticmethod
    def _content(task: str, segs, j: int, start: int) -> str:
        context = join_segments(segs[start:j])
        return asr_prompt(context) if task == "asr" else msr_prompt(context, segs[j + 1].text)

    def _row(self, task, doc, segs, j, k, start, content, n_tok, cut_chars) -> dict:
        return {
            "data_source": DATA_SOURCE[task],
            "prompt": [{"role": "user", "content": content}],
            "ability": "rlpt",
            "reward_model": {"style": "model", "ground_truth": reference_text(segs, j, k)},
            "extra_info": {
                "index": -1,
                "split": "",
                "task": task,
                "doc_id": doc.id,
                "source": doc.source,
                "segment_index": j,
                "num_segments": len(segs),
                "target": segs[j].text,
                "next_segment": segs[j + 1].text,
                "reference_segments": k,
                "context_segments": j - start,
                "context_truncated": start > 0,
                "context_cut_segments": start,
                "context_cut_chars": cut_chars,
                "prompt_tokens": n_tok,
            },
        }


_WORKER: DocumentBuilder | None = None


def _init_worker(cfg: BuildConfig) -> None:
    import signal

    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it terminates the pool at once
    _WORKER = DocumentBuilder(cfg)


def _worker_build(doc: Document) -> dict:
    return _WORKER.build(doc)


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
def parquet_schema():
    import pyarrow as pa

    return row_schema(
        pa.struct([("style", pa.string()), ("ground_truth", pa.string())]),
        pa.struct(
            [
                ("index", pa.int64()),
                ("split", pa.string()),
                ("task", pa.string()),
                ("doc_id", pa.string()),
                ("source", pa.string()),
                ("segment_index", pa.int32()),
                ("num_segments", pa.int32()),
                ("target", pa.string()),
                ("next_segment", pa.string()),
                ("reference_segments", pa.int32()),
                ("context_segments", pa.int32()),
                ("context_truncated", pa.bool_()),
                ("context_cut_segments", pa.int32()),
                ("context_cut_chars", pa.int64()),
                ("prompt_tokens", pa.int32()),
            ]
        ),
    )


# ---------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------
class _Runner:
    """Builds documents in-process or on a process pool, in order, with bounded memory."""

    def __init__(self, cfg: BuildConfig, builder: DocumentBuilder):
        self.cfg, self.builder = cfg, builder
        self.pool = None
        if cfg.workers > 1:
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            self.pool = mp.get_context("spawn").Pool(cfg.workers, initializer=_init_worker, initargs=(cfg,))

    def build(self, docs: Iterable[Document]) -> Iterator[dict]:
        """DocumentBuilder.build over the stream, in input order."""
        if self.pool is None:
            yield from map(self.builder.build, docs)
            return
        for window in windows(docs, 64 * self.cfg.workers):
            yield from self.pool.imap(_worker_build, window, chunksize=4)

    def close(self, failed: bool = False) -> None:
        """Wait for the workers; after a failure or Ctrl-C, stop them at once instead."""
        if self.pool is not None:
            if failed:
                self.pool.terminate()
            else:
                self.pool.close()
            self.pool.join()


def run_build(cfg: BuildConfig, quiet: bool = False) -> dict:
    """Build the four pools and the report; returns the report dict. The files appear in ``cfg.output`` only
    when the whole build succeeded (an earlier build there stays intact otherwise)."""
    cfg.validate()
    refuse_output_inside(list(cfg.inputs), cfg.output)
    with staged_output(cfg.output) as out:
        return _build(cfg, out, quiet)


def _build(cfg: BuildConfig, out: str, quiet: bool) -> dict:
    reader_cfg = cfg.reader_config()
    CorpusReader(list(cfg.inputs), reader_cfg)  # fail fast on bad paths before loading anything
    t0 = time.perf_counter()
    builder = DocumentBuilder(cfg)
    runner = None
    try:
        runner = _Runner(cfg, builder)  # inside: Ctrl-C while the pool starts still stops it
        # Pass 1: the --val-docs usable documents with the smallest seeded hash are validation docs.
        # Only a document that would enter the current top-N is segmented to check it is usable, so
        # this pass costs a read and a hash per document (about N·ln(D/N) checks in all).
        val_ordinals = (
            select_validation(
                progress(CorpusReader(list(cfg.inputs), reader_cfg), "select val", quiet),
                cfg.val_docs,
                cfg.seed,
                builder.usable,
            )
            if cfg.val_docs != 0
            else set()
        )

        # Pass 2: build and write.
        writers = {
            (s, t): PoolWriter(os.path.join(out, f"{s}_{t}.parquet"), parquet_schema())
            for s in ("train", "val")
            for t in TASKS
        }
        reader = CorpusReader(list(cfg.inputs), reader_cfg)
        doc_skips, sample_drops, hist, capped = Counter(), Counter(), Counter(), Counter()
        segments = docs_used = truncated = index = 0
        docs_per_split = Counter()
        for ordinal, res in enumerate(runner.build(progress(reader, "build", quiet))):
            segments += res["segments"]
            sample_drops.update(res["dropped"])
            capped.update(res.get("capped", {}))
            if res["skip"]:
                doc_skips[res["skip"]] += 1
                continue
            split = "val" if ordinal in val_ordinals else "train"
            wrote = capped_here = False
            for task in TASKS:
                for row in res["rows"][task]:
                    if split == "val" and writers[(split, task)].count >= cfg.val_max_rows // 2:
                        sample_drops[f"{task}_val_over_max_rows"] += 1
                        capped_here = True
                        continue
                    row["extra_info"]["index"], row["extra_info"]["split"] = index, split
                    index += 1
                    hist[row["extra_info"]["prompt_tokens"]] += 1
                    truncated += row["extra_info"]["context_truncated"]
                    writers[(split, task)].add(row)
                    wrote = True
            if wrote:
                docs_used += 1
                docs_per_split[split] += 1
            elif capped_here:  # its rows were built, but validation was full (--val-max-rows)
                doc_skips["val_over_max_rows"] += 1
            else:
                doc_skips["all_prompts_too_long"] += 1
        for w in writers.values():
            w.close()
    except BaseException:
        if runner is not None:
            runner.close(failed=True)
        raise
    runner.close()

    train_rows = writers[("train", "asr")].count + writers[("train", "msr")].count
    if not train_rows:
        if docs_per_split["val"] and not docs_per_split["train"]:
            cause = (
                f"all {docs_per_split['val']} usable documents went to validation (--val-docs "
                f"{'default' if cfg.val_docs is None else cfg.val_docs}); lower --val-docs or add documents"
            )
        else:
            fix = read_skip_hint(reader.stats.dropped, reader_cfg) if not reader.stats.forwarded else None
            if not fix and doc_skips and doc_skips.most_common(1)[0][0] == "all_prompts_too_long":
                fix = f"no prompt fits --max-prompt-tokens {cfg.max_prompt_tokens} (instructions and context): raise it"
            cause = (
                f"documents used {docs_used}, skipped at read {dict(reader.stats.dropped)}, at build "
                f"{dict(doc_skips)}, files not read {dict(reader.files_skipped)}; "
                + (fix or "check --text-field, lower --min-target-chars, or raise --max-prompt-tokens")
            )
        raise UserError(f"no training rows from {', '.join(cfg.inputs)}: {cause}")
    rows_total = sum(w.count for w in writers.values())
    report = {
        "config": config_record(cfg),
        "documents": {
            "read": reader.stats.forwarded + reader.stats.total_dropped,
            "skipped_at_read": dict(sorted(reader.stats.dropped.items())),
            "skipped_at_build": dict(sorted(doc_skips.items())),
            "used": docs_used,
            "used_per_split": dict(sorted(docs_per_split.items())),
        },
        "files_skipped": dict(sorted(reader.files_skipped.items())),
        "files_skipped_examples": dict(sorted(reader.files_skipped_examples.items())),
        "dataset_splits": reader.dataset_splits,
        "segments": segments,
        "samples": {f"{s}_{t}": writers[(s, t)].count for s in ("train", "val") for t in TASKS},
        "samples_dropped": dict(sorted(sample_drops.items())),
        "references_capped": {t: capped[t] for t in TASKS},
        "prompt_tokens": percentiles(hist),
        "truncated_context_share": round(truncated / rows_total, 6) if rows_total else 0.0,
        "files": {f"{s}_{t}": f"{s}_{t}.parquet" for s in ("train", "val") for t in TASKS},
    }
    write_json_atomic(os.path.join(out, RLPT_REPORT), report, sort_keys=True)
    report["_seconds"] = time.perf_counter() - t0
    report["_prompt_tokens_total"] = sum(k * v for k, v in hist.items())
    return report


def format_summary(report: dict, output: str) -> str:
    d, s = report["documents"], report["samples"]
    lines = [
        f"documents read: {d['read']}, used: {d['used']} {d['used_per_split']}",
        skipped_line(d, report["files_skipped"], report.get("files_skipped_examples")),
        *splits_lines(report.get("dataset_splits")),
        f"segments: {report['segments']}",
        "samples: "
        + ", ".join(f"{k}={v}" for k, v in s.items())
        + (f"; dropped: {report['samples_dropped']}" if report["samples_dropped"] else "")
        + (
            f"; references cut to {report['config']['max_reference_tokens']} tokens: {report['references_capped']}"
            if any(report["references_capped"].values())
            else ""
        ),
        prompt_tokens_line(report["prompt_tokens"], report["config"]["max_prompt_tokens"]),
        f"truncated contexts: {100 * report['truncated_context_share']:.1f}%",
        wrote_line(report["files"].values(), RLPT_REPORT, output),
        *empty_validation_lines(
            {f"{k}.parquet": v for k, v in s.items() if k.startswith("val_")}, "add documents or raise --val-docs"
        ),
    ]
    return "\n".join(lines)
