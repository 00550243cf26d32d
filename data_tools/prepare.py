"""`rlpt prepare`: clean, filter, deduplicate, mask PII, decontaminate and rate a corpus, resumably.

Phases (each shard's output is written to a temporary name and renamed, its stats file last, so a
shard either exists complete or not at all; a rerun with the same arguments skips what exists):

1. split      inputs -> ``work/input/part-NNNNN.parquet`` (``--shard-docs`` documents each), in input
              order; malformed records are counted by reason (as `rlpt build` does).
2. clean      per shard, in parallel: normalise -> rule filters -> language -> exact hash + MinHash
              signature (``work/stage1``); drops go with the shard.
3. cluster    global: exact and near-duplicate clusters over all signatures (``work/clusters.parquet``).
4. finish     per shard, in parallel: drop non-survivors -> mask PII -> decontaminate -> quality LM ->
              ``kept/part-NNNNN.parquet`` and ``dropped/part-NNNNN.parquet``.
5. report     ``prepare_report.json`` and ``prepare_report.html``.

Phases 2 and 4 run on the local engine (processes on this machine) or as Ray tasks (``--engine ray``);
every shard is a pure function of its input and the cluster table, so both engines write identical files.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

from ..errors import UserError
from ..options import opt
from ..paths import output_lock, prepare_output_dir
from .decontam import DecontamConfig
from .dedup import DedupConfig
from .filters import FilterConfig
from .normalize import NormalizeConfig
from .quality import QualityConfig
from .readers import FORMATS_HELP, CorpusOptions, CorpusReader, discover, read_skip_hint, refuse_output_inside

REPORT_NAME = "prepare_report.json"
LENGTH_BINS = (0, 100, 300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000)


@dataclass(frozen=True)
class PrepareSwitches:
    """Whole stages turned off on the command line (the other stages switch off through their own options)."""

    normalize: bool = opt(True, "skip Unicode/whitespace normalisation", flag="--no-normalize")
    filters: bool = opt(True, "skip the rule-based filters (and --languages)", flag="--no-filters")


@dataclass(frozen=True, kw_only=True)
class PrepareConfig(CorpusOptions):
    shard_docs: int = opt(5000, "documents per shard (the unit of work and of resume)", low=1)
    engine: str = opt(
        "local", "`local` (processes here) or `ray` (Ray tasks, one shard each)", choices=("local", "ray")
    )
    workers: int = opt(1, "shards in parallel (processes, or Ray tasks)", low=1)
    ray_address: str | None = opt(None, "Ray cluster address for `--engine ray`; none: a local Ray")
    normalize: NormalizeConfig | None = field(default_factory=NormalizeConfig)
    filters: FilterConfig | None = field(default_factory=FilterConfig)
    dedup: DedupConfig | None = field(default_factory=DedupConfig)
    pii: bool = opt(True, "keep PII unmasked", flag="--no-pii")
    keep_work: bool = opt(
        False, "keep work/ (input shards, signatures) after a complete run; by default only its quality cache stays"
    )
    decontam: DecontamConfig | None = None
    quality: QualityConfig | None = None

    def validate(self) -> None:
        if self.shard_docs < 1:
            raise UserError("--shard-docs must be >= 1")
        if self.workers < 1:
            raise UserError("--workers must be >= 1")
        if self.engine not in ("local", "ray"):
            raise UserError(f"--engine must be local or ray, got {self.engine!r}")
        if self.dedup and not 0 < self.dedup.threshold < 1:
            raise UserError("--dedup-threshold must be between 0 and 1")
        if self.quality and not (self.quality.base_url and self.quality.model):
            raise UserError("the quality stage needs both --quality-url and --quality-model")

    def fingerprint(self) -> dict:
        """Everything that decides the output (not where it goes nor how many workers write it)."""
        d = asdict(self)
        for k in ("output", "engine", "workers", "ray_address", "keep_work"):
            d.pop(k)
        d["inputs"] = list(d["inputs"])
        return json.loads(json.dumps(d, default=list))


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------
def _write_parquet(path: str, rows: list[dict], schema, row_group_size: int | None = None) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = path + ".tmp"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp, compression="zstd", row_group_size=row_group_size)
    os.replace(tmp, path)


def _write_json(path: str, data: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def _hist(lengths) -> dict:
    import bisect

    counts = Counter(bisect.bisect_right(LENGTH_BINS, n) - 1 for n in lengths)
    return {str(LENGTH_BINS[i]): counts.get(i, 0) for i in range(len(LENGTH_BINS))}


def _schemas():
    import pyarrow as pa

    doc = [("ordinal", pa.int64()), ("id", pa.string()), ("source", pa.string()), ("text", pa.string())]
    return {
        "input": pa.schema(doc),
        "stage1": pa.schema(doc + [("exact", pa.binary()), ("sig", pa.binary()), ("language", pa.string())]),
        "dropped": pa.schema(doc + [("stage", pa.string()), ("reason", pa.string()), ("detail", pa.string())]),
        "kept": pa.schema(
            doc
            + [
                ("cluster_id", pa.string()),
                ("cluster_size", pa.int32()),
                ("pii", pa.string()),
                ("pii_total", pa.int32()),
                ("quality_score", pa.int32()),
                ("language", pa.string()),
            ]
        ),
        # exact: the document's text equals its cluster survivor's (an exact, not a near, duplicate)
        "clusters": pa.schema(
            [
                ("ordinal", pa.int64()),
                ("root", pa.int64()),
                ("root_id", pa.string()),  # the surviving document's id, named in dropped/'s detail
                ("size", pa.int32()),
                ("exact", pa.bool_()),
            ]
        ),
    }


class Layout:
    def __init__(self, output: str):
        self.output = output
        self.work = os.path.join(output, "work")
        self._make()

    def _make(self) -> None:
        for d in ("work/input", "work/stage1", "work/quality_cache", "kept", "dropped"):
            os.makedirs(os.path.join(self.output, d), exist_ok=True)

    def reset(self) -> None:
        """Forget an earlier run's shards and outputs (its quality cache stays: it is keyed by text)."""
        import shutil

        for d in ("work/input", "work/stage1", "kept", "dropped"):
            shutil.rmtree(os.path.join(self.output, d), ignore_errors=True)
        for name in os.listdir(self.work):
            if name.endswith(".json") or name.endswith(".parquet"):
                os.unlink(os.path.join(self.work, name))
        self._make()

    def remove_partial(self) -> None:
        """Temporary files of shards that were being written (each shard is renamed into place when done)."""
        for root, _, names in os.walk(self.output):
            for name in names:
                if name.endswith(".tmp"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(root, name))

    def remove_work(self) -> None:
        """After a complete run: everything in work/ except the quality cache (a rerun pays no rater again) and
        settings.json (a rerun with other settings is still refused)."""
        import shutil

        for name in os.listdir(self.work):
            if name not in ("quality_cache", "settings.json"):
                path = os.path.join(self.work, name)
                shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)

    def input(self, i: int) -> str:
        return os.path.join(self.work, "input", f"part-{i:05d}.parquet")

    def stage1(self, i: int, ext: str = "parquet") -> str:
        return os.path.join(self.work, "stage1", f"part-{i:05d}.{ext}")

    def stage1_dropped(self, i: int) -> str:
        return os.path.join(self.work, "stage1", f"dropped-{i:05d}.parquet")

    def kept(self, i: int) -> str:
        return os.path.join(self.output, "kept", f"part-{i:05d}.parquet")

    def dropped(self, i: int) -> str:
        return os.path.join(self.output, "dropped", f"part-{i:05d}.parquet")

    def final_stats(self, i: int) -> str:
        return os.path.join(self.work, f"final-{i:05d}.json")

    @property
    def split_done(self) -> str:
        return os.path.join(self.work, "input", "_SUCCESS.json")

    @property
    def clusters(self) -> str:
        return os.path.join(self.work, "clusters.parquet")


# ---------------------------------------------------------------------------------------------
# Phase 1: split
# ---------------------------------------------------------------------------------------------
def split_inputs(cfg: PrepareConfig, layout: Layout, quiet: bool) -> dict:
    if os.path.exists(layout.split_done):
        return json.load(open(layout.split_done))
    from tqdm.auto import tqdm

    schema = _schemas()["input"]
    reader = CorpusReader(list(cfg.inputs), cfg.reader_config())
    shard, rows, ordinal = 0, [], 0
    lengths = []
    for doc in tqdm(reader, desc="split", unit="doc", disable=quiet or None, file=sys.stderr, mininterval=1.0):
        rows.append({"ordinal": ordinal, "id": doc.id, "source": doc.source, "text": doc.text})
        lengths.append(len(doc.text))
        ordinal += 1
        if len(rows) == cfg.shard_docs:
            if not os.path.exists(layout.input(shard)):  # resumed: this shard was written before
                _write_parquet(layout.input(shard), rows, schema)
            shard, rows = shard + 1, []
    if rows:
        if not os.path.exists(layout.input(shard)):
            _write_parquet(layout.input(shard), rows, schema)
        shard += 1
    info = {
        "shards": shard,
        "documents": ordinal,
        "skipped_at_read": dict(sorted(reader.stats.dropped.items())),
        "files_skipped": dict(sorted(reader.files_skipped.items())),
        "files_skipped_examples": dict(sorted(reader.files_skipped_examples.items())),
        "dataset_splits": reader.dataset_splits,
        "length_hist": _hist(lengths),
    }
    _write_json(layout.split_done, info)
    return info


# ---------------------------------------------------------------------------------------------
# Phase 2: clean (per shard)
# ---------------------------------------------------------------------------------------------
def clean_shard(cfg: PrepareConfig, shard: int) -> dict:
    import pyarrow.parquet as pq

    from .dedup import exact_key, signature
    from .filters import LanguageID, filter_reason
    from .normalize import normalize_text

    layout = Layout(cfg.output)
    stats_path = layout.stage1(shard, "json")
    if os.path.exists(stats_path):
        return json.load(open(stats_path))
    schemas = _schemas()
    lang = (
        LanguageID(cfg.filters.languages, cfg.filters.min_language_score)
        if cfg.filters and cfg.filters.languages
        else None
    )
    kept, dropped, drops = [], [], Counter()
    for row in pq.read_table(layout.input(shard)).to_pylist():
        text, reason, stage, language = row["text"], None, None, None
        if cfg.normalize:
            text = row["text"] = normalize_text(text, cfg.normalize)
            if not text:
                reason, stage = "empty_after_normalize", "normalize"
        if reason is None and cfg.filters:
            reason, stage = filter_reason(text, cfg.filters), "filter"
        detail = ""
        if reason is None and lang is not None:
            reason, language, score = lang.reason(text)
            stage, detail = "language", f"{language} {score:.3f}"
        if reason is not None:
            drops[f"{stage}:{reason}"] += 1
            dropped.append({**row, "stage": stage, "reason": reason, "detail": detail})
            continue
        sig = signature(text, cfg.dedup).tobytes() if cfg.dedup and cfg.dedup.near else b""
        kept.append({**row, "exact": exact_key(text), "sig": sig, "language": language})
    _write_parquet(layout.stage1(shard), kept, schemas["stage1"])
    _write_parquet(layout.stage1_dropped(shard), dropped, schemas["dropped"])
    stats = {"shard": shard, "in": len(kept) + len(dropped), "kept": len(kept), "drops": dict(sorted(drops.items()))}
    _write_json(stats_path, stats)
    return stats


# ---------------------------------------------------------------------------------------------
# Phase 3: cluster (global)
# ---------------------------------------------------------------------------------------------
def cluster_corpus(cfg: PrepareConfig, layout: Layout, shards: int) -> dict:
    import numpy as np
    import pyarrow.parquet as pq

    from .dedup import cluster

    if os.path.exists(layout.clusters):
        table = pq.read_table(layout.clusters)
    else:
        ordinals, ids, exact, sigs = [], [], [], []
        for i in range(shards):
            t = pq.read_table(layout.stage1(i), columns=["ordinal", "id", "exact", "sig"])
            ordinals += t.column("ordinal").to_pylist()
            ids += t.column("id").to_pylist()
            exact += t.column("exact").to_pylist()
            sigs += t.column("sig").to_pylist()
        d = cfg.dedup
        if d and ordinals:
            matrix = (
                np.frombuffer(b"".join(sigs), dtype=np.uint32).reshape(len(sigs), d.num_perm)
                if d.near
                else np.zeros((len(sigs), 0), dtype=np.uint32)
            )
            roots = cluster(matrix, exact, d)
        else:
            roots = list(range(len(ordinals)))
        sizes = Counter(roots)
        rows = [
            {"ordinal": o, "root": ordinals[r], "root_id": ids[r], "size": sizes[r], "exact": exact[i] == exact[r]}
            for i, (o, r) in enumerate(zip(ordinals, roots, strict=True))
        ]
        _write_parquet(layout.clusters, rows, _schemas()["clusters"], row_group_size=65536)
        table = pq.read_table(layout.clusters)
    sizes = Counter()
    for root, size in zip(table.column("root").to_pylist(), table.column("size").to_pylist(), strict=True):
        sizes[root] = size
    return {"clusters": len(sizes), "size_hist": dict(sorted(Counter(sizes.values()).items()))}


# ---------------------------------------------------------------------------------------------
# Phase 4: finish (per shard)
# ---------------------------------------------------------------------------------------------
_DECONTAM_INDEX = {}


def _decontam_index(cfg: DecontamConfig):
    from .decontam import EvalIndex

    key = json.dumps(asdict(cfg), default=list, sort_keys=True)
    if key not in _DECONTAM_INDEX:  # built once per worker process
        _DECONTAM_INDEX[key] = EvalIndex(cfg)
    return _DECONTAM_INDEX[key]


def finish_shard(cfg: PrepareConfig, shard: int) -> dict:
    import pyarrow.parquet as pq

    from .pii import mask_pii

    layout = Layout(cfg.output)
    stats_path = layout.final_stats(shard)
    if os.path.exists(stats_path):
        return json.load(open(stats_path))
    schemas = _schemas()
    rows = pq.read_table(layout.stage1(shard)).to_pylist()
    lo, hi = (rows[0]["ordinal"], rows[-1]["ordinal"]) if rows else (0, -1)
    # the table is in ordinal order: row-group statistics let this read only the shard's part
    clusters = pq.read_table(layout.clusters, filters=[("ordinal", ">=", lo), ("ordinal", "<=", hi)])
    columns = (clusters.column(c).to_pylist() for c in ("ordinal", "root", "size", "exact", "root_id"))
    info = {o: (r, s, e, rid) for o, r, s, e, rid in zip(*columns, strict=True)}
    dropped = pq.read_table(layout.stage1_dropped(shard)).to_pylist()
    drops, pii_counts, kept = Counter(), Counter(), []
    index = _decontam_index(cfg.decontam) if cfg.decontam and cfg.decontam.eval_sets else None
    hits = Counter()
    survivors = []
    for r in rows:
        root, size, exact, root_id = info[r["ordinal"]]
        base = {k: r[k] for k in ("ordinal", "id", "source", "text")}
        if root != r["ordinal"]:
            reason = "exact_duplicate" if exact else "near_duplicate"
            drops[f"dedup:{reason}"] += 1
            dropped.append({**base, "stage": "dedup", "reason": reason, "detail": f"survivor {root_id}"})
            continue
        text, pii = r["text"], Counter()
        if cfg.pii:
            text, pii = mask_pii(text)
            pii_counts.update(pii)
        if index is not None:
            match = index.match(text)
            if match is not None:
                bench, gram = match
                hits[bench] += 1
                drops[f"decontaminate:{bench}"] += 1
                dropped.append({**base, "stage": "decontaminate", "reason": bench, "detail": gram})
                continue
        survivors.append(
            {
                **base,
                "text": text,
                "cluster_id": str(root),
                "cluster_size": size,
                "pii": json.dumps(dict(sorted(pii.items()))),
                "pii_total": sum(pii.values()),
                "quality_score": None,
                "language": r["language"],
            }
        )
    unparsed = requests = 0
    if cfg.quality and survivors:
        from .quality import QualityRater

        rater = QualityRater(cfg.quality, os.path.join(layout.work, "quality_cache"), f"part-{shard:05d}")
        scores = rater.rate([s["text"] for s in survivors])
        requests = rater.requests
        for s, score in zip(survivors, scores, strict=True):
            s["quality_score"] = score
            if score is None:
                unparsed += 1  # kept: an unrated document is not a bad one
            elif score < cfg.quality.threshold:
                drops["quality:below_threshold"] += 1
                dropped.append(
                    {k: s[k] for k in ("ordinal", "id", "source", "text")}
                    | {"stage": "quality", "reason": "below_threshold", "detail": str(score)}
                )
                continue
            kept.append(s)
    else:
        kept = survivors
    dropped.sort(key=lambda d: d["ordinal"])
    _write_parquet(layout.kept(shard), kept, schemas["kept"])
    _write_parquet(layout.dropped(shard), dropped, schemas["dropped"])
    stats = {
        "shard": shard,
        "kept": len(kept),
        "drops": dict(sorted(drops.items())),
        "pii": dict(sorted(pii_counts.items())),
        "docs_with_pii": sum(1 for s in kept if s["pii_total"]),
        "decontam_hits": dict(sorted(hits.items())),
        "quality_unparsed": unparsed,
        "quality_requests": requests,
        "kept_length_hist": _hist(len(s["text"]) for s in kept),
    }
    _write_json(stats_path, stats)
    return stats


# ---------------------------------------------------------------------------------------------
# Engines
# ---------------------------------------------------------------------------------------------
def _ignore_sigint() -> None:
    """In pool workers: Ctrl-C belongs to the parent, which terminates the pool at once (no worker tracebacks)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _call(args):
    fn, cfg, shard = args
    return fn(cfg, shard)


def ray_results(fn, cfg: PrepareConfig, shards: list[int]):
    """(shard, ``fn(cfg, shard)``) as Ray tasks, at most ``cfg.workers`` in flight, yielded as each finishes.

    Plain tasks rather than Ray Data: Ray Data bundles small blocks into one task and hands results over
    only when that task ends, which serialised the shards and left the progress bar at 0 until the end.
    """
    import ray

    if not ray.is_initialized():
        ray.init(address=cfg.ray_address, include_dashboard=False, log_to_driver=False)
    task = ray.remote(num_cpus=1, max_retries=0)(_call)
    todo, pending = list(shards), {}
    try:
        while todo or pending:
            while todo and len(pending) < cfg.workers:
                shard = todo.pop(0)
                pending[task.remote((fn, cfg, shard))] = shard
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                yield pending.pop(ref), ray.get(ref)
    finally:
        for ref in pending:  # interrupted or failed: stop the shards still running
            ray.cancel(ref, force=True)


def run_phase(fn, cfg: PrepareConfig, shards: list[int], desc: str, quiet: bool) -> list[dict]:
    """``fn(cfg, shard)`` for every shard, on the chosen engine; results in shard order."""
    from tqdm.auto import tqdm

    if not shards:
        return []
    bar = tqdm(total=len(shards), desc=desc, unit="shard", disable=quiet or None, file=sys.stderr)
    try:
        if cfg.engine == "ray":
            by_shard = {}
            for shard, stats in ray_results(fn, cfg, shards):
                by_shard[shard] = stats
                bar.update(1)  # as each shard finishes, not once at the end
            return [by_shard[s] for s in shards]
        if cfg.workers == 1:
            results = []
            for s in shards:
                results.append(fn(cfg, s))
                bar.update(1)
            return results
        import multiprocessing as mp

        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        with mp.get_context("spawn").Pool(cfg.workers, initializer=_ignore_sigint) as pool:  # Ctrl-C: terminate
            results = []
            for r in pool.imap(_call, [(fn, cfg, s) for s in shards]):
                results.append(r)
                bar.update(1)
            return results
    finally:
        bar.close()


# ---------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------
def run_prepare(cfg: PrepareConfig, quiet: bool = False) -> dict:
    cfg.validate()
    refuse_output_inside(list(cfg.inputs), cfg.output)
    output = prepare_output_dir(cfg.output)  # an unusable --output fails here, before any reading or rating
    CorpusReader(list(cfg.inputs), cfg.reader_config())  # fail fast
    if cfg.decontam and cfg.decontam.eval_sets:
        _decontam_index(cfg.decontam)  # bad evaluation files fail here, before any work
    if cfg.quality:
        from .quality import check_rater

        check_rater(cfg.quality)  # an unreachable rater fails here, before any work
    t0 = time.perf_counter()
    with output_lock(output):
        return _prepare(cfg, quiet, t0)


def input_fingerprint(inputs) -> list[list]:
    """[path, size, mtime_ns, content hash] of every file the inputs name (folders walked): what decides
    whether a resumed run may reuse its earlier shards."""
    import hashlib

    files = []
    for kind, path in discover(list(inputs)):
        if kind == "hf":
            files.extend(sorted(os.path.join(r, n) for r, _, names in os.walk(path) for n in names))
        else:
            files.append(path)
    out = []
    for path in files:
        st = os.stat(path)
        digest = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        out.append([os.path.abspath(path), st.st_size, st.st_mtime_ns, digest.hexdigest()])
    return out


def changed_settings(old: dict, new: dict, prefix: str = "") -> list[str]:
    """``key: old -> new`` for each setting that differs (nested stages as ``dedup.num_perm``).

    >>> changed_settings({"pii": True, "dedup": {"num_perm": 128}}, {"pii": False, "dedup": {"num_perm": 64}})
    ['dedup.num_perm: 128 -> 64', 'pii: True -> False']
    """
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += changed_settings(a, b, f"{prefix}{key}.")
        elif a != b:  # a stage switched on or off is named as such, not by its whole settings
            shown = ["on" if isinstance(v, dict) else "off" if v is None and isinstance(a or b, dict) else repr(v)
                     for v in (a, b)]  # fmt: skip
            out.append(f"{prefix}{key}: {shown[0]} -> {shown[1]}")
    return out


def _prepare(cfg: PrepareConfig, quiet: bool, t0: float) -> dict:
    layout = Layout(cfg.output)
    settings_path = os.path.join(layout.work, "settings.json")
    settings = {"config": cfg.fingerprint(), "inputs": input_fingerprint(cfg.inputs)}
    if os.path.exists(settings_path):
        earlier = json.load(open(settings_path))
        if earlier.get("config") != settings["config"]:
            changed = ", ".join(changed_settings(earlier.get("config") or {}, settings["config"])[:4])
            raise UserError(
                f"{cfg.output} holds a run with other settings ({changed}): use a new --output, the earlier "
                f"settings to continue it, or delete {layout.work} to start over"
            )
        if earlier.get("inputs") != settings["inputs"]:
            print(
                f"rlpt prepare: the inputs changed since the earlier run in {cfg.output}; starting over",
                file=sys.stderr,
            )
            layout.reset()
    _write_json(settings_path, settings)
    layout.remove_partial()  # a killed earlier run may have left a shard's temporary file
    try:
        return _run_phases(cfg, layout, quiet, t0)
    except BaseException:  # Ctrl-C or a failure: the pools are stopped; leave no temporary file behind
        layout.remove_partial()
        raise


def _run_phases(cfg: PrepareConfig, layout: Layout, quiet: bool, t0: float) -> dict:
    split = split_inputs(cfg, layout, quiet)
    shards = list(range(split["shards"]))
    clean = run_phase(clean_shard, cfg, shards, "clean", quiet)
    clusters = cluster_corpus(cfg, layout, split["shards"])
    final = run_phase(finish_shard, cfg, shards, "finish", quiet)
    from .report import build_report, write_html

    report = build_report(cfg, split, clean, clusters, final)
    _write_json(os.path.join(cfg.output, REPORT_NAME), report)
    write_html(report, os.path.join(cfg.output, "prepare_report.html"))
    report["work_removed"] = not cfg.keep_work
    if not cfg.keep_work:
        layout.remove_work()
    report["_seconds"] = time.perf_counter() - t0
    if not report["documents_kept"]:
        raise UserError(nothing_kept(report, cfg))
    return report


def nothing_kept(report: dict, cfg: PrepareConfig) -> str:
    """The one line for a run that kept no document: the biggest reason, and the option that usually fixes it."""
    reasons = Counter({f"read:{k}": v for k, v in report["records_skipped_at_read"].items()})
    reasons.update(report["dropped_by_reason"])
    files = report.get("files_skipped") or {}
    if not reasons and not report["documents_in"]:
        where = f"; files not read: {files}" if files else ""
        return f"no documents in {', '.join(cfg.inputs)}{where} (supported inputs: {FORMATS_HELP})"
    reason, n = reasons.most_common(1)[0]
    read_fix = (
        read_skip_hint(Counter({reason[len("read:") :]: n}), cfg.reader_config()) if reason[:5] == "read:" else None
    )
    hints = {
        reason: read_fix,
        "filter:stop_words": "the stop-word rule is English-only: --min-stop-words 0 for other languages",
        "filter:too_few_words": "--min-words is above these documents' length",
        "quality:below_threshold": "lower --quality-threshold, or check the rater",
    }
    total = sum(reasons.values())
    return f"kept 0 of {report['documents_in']} documents: the biggest drop is {reason} ({n} of {total}); " + (
        hints.get(reason) or "see prepare_report.json (dropped_by_reason) and dropped/ for what was removed"
    )
