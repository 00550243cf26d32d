"""What the judge costs per verdict, by prompt layout and reply mode, against a real vLLM judge on this CPU.

The same GRPO-like batch (``--references`` references x ``--n`` predictions: the true next sentence, a
form-only rewording, an exact duplicate, and sentences of other references; ``prefix_shortcut`` off so
every prediction reaches the judge) is scored by the `rlpt` manager inside verl's RewardLoopWorker for
{paper, cache_friendly} x {generate, choice, logprob} (`rlpt judge-eval --compare-modes`, one fresh client
per combination, vLLM's prefix cache reset between them). Printed per combination: wall seconds and tokens
per judge call, the ratio of seconds per call against paper+generate in the same run, vLLM's prefix-cache
hit rate, agreement with the labels and with paper+generate.

The judge is SmolLM2-135M-Instruct served by ``vllm serve`` from the e2e venv (``make e2e-venv``). It is
too small to be a good judge (see docs/benchmarks.md): the cost figures are the point, not its verdicts.

    python benchmarks/bench_judge_cost.py [--references 8] [--n 8] [--output bench_judge_cost.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import pyarrow.parquet as pq

from rlpt_verl.tasks.rlpt import BuildConfig, run_build
from rlpt_verl.tools import assets
from rlpt_verl.tools.judge_cases import grpo_cases
from rlpt_verl.tools.judge_compare import compare_modes, format_comparison
from rlpt_verl.tools.local_judge import LocalVLLMJudge, e2e_vllm


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--references", type=int, default=8)
    ap.add_argument("--n", type=int, default=8, help="predictions per reference (GRPO's rollout.n)")
    ap.add_argument("--vllm", default=e2e_vllm(), help="the vllm executable (default: the e2e venv's)")
    ap.add_argument("--output", help="also write the full comparison as JSON")
    args = ap.parse_args()
    if not args.vllm:
        print("no vLLM: run `make e2e-venv` or pass --vllm PATH", file=sys.stderr)
        return 2
    model_dir = assets.smollm2_dir(with_model=True)
    work = tempfile.mkdtemp(prefix="bench_judge_cost.")
    corpus = assets.pydoc_topics_jsonl(os.path.join(work, "pydoc.jsonl"))
    built = os.path.join(work, "built")
    run_build(
        BuildConfig(
            inputs=(corpus,),
            output=built,
            tokenizer=model_dir,
            max_prompt_tokens=512,
            max_targets_per_doc=12,
            val_docs=6,
            seed=3,
        ),
        quiet=True,
    )
    rows = pq.read_table(os.path.join(built, "val_asr.parquet")).to_pylist()
    cases = grpo_cases(rows, n=args.n, seed=0, references=args.references)
    path = os.path.join(work, "cases.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(c) + "\n" for c in cases)
    labels = sum(c["label"] for c in cases)
    print(f"{len(cases)} cases ({len(cases) // args.n} references x {args.n}; {labels} labelled 1)", flush=True)
    t0 = time.perf_counter()
    with LocalVLLMJudge(model_dir, args.vllm) as judge:
        print(f"vLLM judge up in {time.perf_counter() - t0:.0f} s at {judge.url}", flush=True)
        # SmolLM2 never writes "Score: 0/1" freely: without judge_unparsable_fraction=1 the generate runs would
        # (rightly) stop as a judge that ignores the format after a few calls, and measure only those
        kwargs = {"prefix_shortcut": False, "judge_unparsable_fraction": 1.0}
        report = compare_modes(path, judge.url, judge.model, model_dir, kwargs)
    print(format_comparison(report))
    base = report["combinations"][report["baseline"]]
    for name, row in report["combinations"].items():
        if "unsupported" in row or name == report["baseline"]:
            continue
        print(
            f"{name}: {row['speedup_vs_baseline'] or 0:.2f}x fewer judge-seconds per call than {report['baseline']} "
            f"({row['seconds_per_call'] or 0:.3f} vs {base['seconds_per_call'] or 0:.3f} s); completion tokens per "
            f"call {row['completion_tokens_per_call'] or 0:.2f} vs {base['completion_tokens_per_call'] or 0:.2f}"
        )
    if args.output:
        report.pop("per_case", None)
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
