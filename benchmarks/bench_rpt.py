"""Benchmark the RPT entropy scorer against a plain batched forward pass of the same model, same run.

Corpus (real text, never committed): `champ-dataset` problems with solutions (math, PyPI) and the
stdlib's pydoc topics, cut to about --tokens proxy tokens. Model: SmolLM2-135M-Instruct (CPU).

Three timings over the same token sequences, each after a warm-up:
- plain: ``model(input_ids, attention_mask).logits`` over exactly the windows and batches the scorer
  uses (so the same tokens, overlaps included) — the cost of the forward pass alone;
- scorer: ``HFEntropyScorer.score`` — windowing, batching, forward, top-16 entropy of every position;
- naive: one forward pass per position over its whole prefix, on --naive-positions positions only,
  extrapolated per position.

Prints tokens/s of each and the ratio scorer/plain (target >= 0.9).

Memory (``--rss-tokens N``, 0 to skip): ``rlpt build-rpt`` as a user runs it, on `champ-dataset`
documents of about N proxy tokens and on the same documents twice (new ids), each in its own process,
with ``--chunk-docs 2`` and parquet row groups of 16 rows, so that even the 1x corpus spans many chunks
and row groups (both are bounded buffers by design; what must not grow is state kept across them).
Prints the peak RSS of each run and, because a model's few hundred MB hide small growth, the peak of
the Python heap (tracemalloc) during the scoring-and-writing pass (above the heap once the model is
loaded) per extra proxy token: keeping every scored entropy would show ~32 B/token.

    python benchmarks/bench_rpt.py [--tokens 12000] [--window 1024] [--overlap 256] [--batch-tokens 8192]
                                   [--rss-tokens 6000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time

import torch
from _measure import run_measured

from rlpt_verl.tasks.prompt_meter import load_tokenizer
from rlpt_verl.tasks.rpt_entropy import HFEntropyScorer, plan_windows, top_k_entropy
from rlpt_verl.tools import assets


def corpus(tokenizer, budget: int) -> list[list[int]]:
    from pydoc_data.topics import topics

    texts = [f"{p['problem']}\n\n{p['solution']}" for p in assets.champ_problems()]
    texts += [topics[k] for k in sorted(topics)]
    random.Random(0).shuffle(texts)
    seqs, total = [], 0
    for t in texts:
        ids = tokenizer(t)["input_ids"]
        seqs.append(ids)
        total += len(ids)
        if total >= budget:
            break
    return seqs


def plain_forward(scorer: HFEntropyScorer, seqs: list[list[int]]) -> None:
    """The scorer's own windows and batches, through the model's ordinary forward (full logits)."""
    with torch.inference_mode():
        for batch in scorer.batches(seqs):
            ids, mask = scorer.inputs(batch, seqs)
            scorer.model(input_ids=ids, attention_mask=mask).logits.sum().item()


def naive(scorer: HFEntropyScorer, seqs: list[list[int]], n: int) -> float:
    """Seconds per position for one forward pass per position (the prefix up to the window size)."""
    rng = random.Random(1)
    picks = [(d, rng.randrange(1, len(seqs[d]))) for d in rng.sample(range(len(seqs)), min(n, len(seqs)))]
    t0 = time.perf_counter()
    with torch.inference_mode():
        for d, p in picks:
            ids = torch.tensor([seqs[d][max(0, p - scorer.window) : p]])
            top_k_entropy(scorer.model(input_ids=ids).logits[0, -1:])
    return (time.perf_counter() - t0) / len(picks)


CHUNK_DOCS = 2
_TRACED = """
import json, sys, tracemalloc
tracemalloc.start()
from rlpt_verl.cli import main
from rlpt_verl.tasks.common import PoolWriter
PoolWriter.__init__.__defaults__ = (16,)  # parquet row groups of 16: the writer's buffer is not what grows
import rlpt_verl.tasks.rpt as rpt
chosen, base = rpt.select_validation, [0]
def select_validation(*a, **k):  # the last step before scoring: measure the scoring pass, not model loading
    out = chosen(*a, **k)
    tracemalloc.reset_peak()
    base[0] = tracemalloc.get_traced_memory()[0]
    return out
rpt.select_validation = select_validation
try:
    rc = main(sys.argv[2:])
finally:
    json.dump({"python_heap_peak": tracemalloc.get_traced_memory()[1] - base[0]}, open(sys.argv[1], "w"))
sys.exit(rc)
"""


def build_rpt_memory(model_dir: str, texts: list[str], copies: int, work: str) -> dict:
    """Peak RSS and Python-heap peak of one `rlpt build-rpt` run over ``copies`` copies of ``texts``."""
    corpus = os.path.join(work, f"corpus{copies}x.jsonl")
    with open(corpus, "w", encoding="utf-8") as f:
        for c in range(copies):
            for i, t in enumerate(texts):
                f.write(json.dumps({"id": f"{i}#{c}", "text": t}) + "\n")
    heap = os.path.join(work, f"heap{copies}x.json")
    cmd = [sys.executable, "-c", _TRACED, heap, "build-rpt", corpus, "-o", os.path.join(work, f"out{copies}x")]
    cmd += ["--tokenizer", model_dir, "--proxy-model", model_dir, "--val-docs", "1", "--quiet"]
    cmd += ["--chunk-docs", str(CHUNK_DOCS)]  # many chunks even at 1x: growth then means corpus-sized state
    seconds, peak = run_measured(cmd)
    report = json.load(open(os.path.join(work, f"out{copies}x", "rpt_report.json")))
    return {"seconds": seconds, "rss": peak, "heap": json.load(open(heap))["python_heap_peak"], "report": report}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=12000)
    ap.add_argument("--window", type=int, default=1024)
    ap.add_argument("--overlap", type=int, default=256)
    ap.add_argument("--batch-tokens", type=int, default=8192)
    ap.add_argument("--naive-positions", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--rss-tokens", type=int, default=6000, help="corpus of the memory check (0: skip it)")
    args = ap.parse_args()

    model_dir = assets.smollm2_dir(with_model=True)
    tok = load_tokenizer(model_dir)
    seqs = corpus(tok, args.tokens)
    n_tokens = sum(map(len, seqs))
    scorer = HFEntropyScorer(model_dir, args.window, args.overlap, args.batch_tokens)
    window_tokens = sum(e - s for seq in seqs for s, e, _ in plan_windows(len(seq), args.window, args.overlap))
    print(
        f"model: SmolLM2-135M-Instruct (fp32, CPU, {torch.get_num_threads()} threads), split head: {scorer.split_head}"
    )
    print(
        f"corpus: {len(seqs)} documents, {n_tokens} tokens ({window_tokens} in windows of {args.window}/{args.overlap})"
    )
    scorer.score(seqs[:2])  # warm-up
    plain_forward(scorer, seqs[:2])
    plain_t, ours_t = [], []
    for _ in range(args.repeats):  # interleaved, so drift hits both alike
        t0 = time.perf_counter()
        plain_forward(scorer, seqs)
        plain_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        scorer.score(seqs)
        ours_t.append(time.perf_counter() - t0)
    plain_s, ours_s = min(plain_t), min(ours_t)
    per_pos = naive(scorer, seqs, args.naive_positions)
    print(f"plain forward : {n_tokens / plain_s:8.0f} tokens/s ({plain_s:.1f}s, best of {args.repeats})")
    print(f"entropy scorer: {n_tokens / ours_s:8.0f} tokens/s ({ours_s:.1f}s, best of {args.repeats})")
    print(f"naive         : {1 / per_pos:8.1f} positions/s ({args.naive_positions} positions, {per_pos:.2f}s each)")
    print(
        f"ratio scorer/plain = {plain_s / ours_s:.3f} (target >= 0.9); "
        f"scorer/naive = {per_pos * n_tokens / ours_s:.0f}x"
    )
    if args.rss_tokens:
        memory_check(model_dir, tok, args.rss_tokens)


def memory_check(model_dir: str, tok, budget: int) -> None:
    texts = [f"{p['problem']}\n\n{p['solution']}" for p in assets.champ_problems()]
    random.Random(2).shuffle(texts)
    picked, total = [], 0
    for t in texts:
        picked.append(t)
        total += len(tok(t)["input_ids"])
        if total >= budget:
            break
    work = tempfile.mkdtemp(prefix="bench_rpt.")
    runs = {c: build_rpt_memory(model_dir, picked, c, work) for c in (1, 2)}
    for c, r in runs.items():
        print(
            f"build-rpt {c}x ({c * total} proxy tokens, {r['report']['documents']['read']} documents): "
            f"{r['seconds']:.0f} s, peak RSS {r['rss'] / 1e6:.0f} MB, "
            f"Python heap peak while scoring +{r['heap'] / 1e6:.2f} MB"
        )
    growth = (runs[2]["heap"] - runs[1]["heap"]) / total
    print(
        f"peak RSS 2x/1x = {runs[2]['rss'] / runs[1]['rss']:.3f}; Python heap growth {growth:.1f} bytes per extra "
        f"proxy token (a list of every entropy would add ~32)"
    )


if __name__ == "__main__":
    main()
