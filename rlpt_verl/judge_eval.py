"""`rlpt judge-eval`: agreement of a judge server with labelled cases, through the training code path.

Each case is scored by the `rlpt` manager inside verl's own RewardLoopWorker (the object a training
run creates in every reward worker), so guards, shortcuts, caching and retries are the ones training
uses. Cases are JSON Lines: ``{"reference": ..., "label": 0|1}`` plus ``"prediction"`` (text) or
``"response"`` (a full policy response with prediction tags).
"""

from __future__ import annotations

import asyncio
import json
import time

from .errors import UserError
from .prompts import PRED_CLOSE, PRED_OPEN

COUNTERS = (
    "format_error",
    "too_long",
    "injection",
    "shortcut",
    "judge_called",
    "cache_hit",
    "judge_error",
    "parse_failure",
)


def load_cases(path: str) -> tuple[list[dict], dict]:
    cases, skipped = [], {}
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot read cases file {path}: {e.strerror}") from None
    with f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                case = json.loads(line)
            except json.JSONDecodeError:
                skipped["malformed_json"] = skipped.get("malformed_json", 0) + 1
                continue
            if not isinstance(case, dict) or not isinstance(case.get("reference"), str):
                skipped["missing_reference"] = skipped.get("missing_reference", 0) + 1
                continue
            if case.get("label") not in (0, 1, True, False):
                skipped["label_not_0_or_1"] = skipped.get("label_not_0_or_1", 0) + 1
                continue
            if isinstance(case.get("response"), str):
                response = case["response"]
            elif isinstance(case.get("prediction"), str):
                response = f"{PRED_OPEN}{case['prediction']}{PRED_CLOSE}"
            else:
                skipped["missing_prediction_or_response"] = skipped.get("missing_prediction_or_response", 0) + 1
                continue
            cases.append(
                {"line": line_no, "response": response, "reference": case["reference"], "label": int(case["label"])}
            )
    if not cases:
        raise UserError(
            f"no usable case in {path} (skipped: {skipped}); each line needs reference, label and "
            "prediction or response"
        )
    return cases, skipped


def agreement(labels: list[int], preds: list[int]) -> dict:
    """Accuracy, precision, recall and the confusion matrix of verdicts against labels.

    >>> agreement([1, 1, 0, 0], [1, 0, 0, 1])["confusion"]
    {'tp': 1, 'fp': 1, 'fn': 1, 'tn': 1}
    """
    tp = sum(label == 1 and p == 1 for label, p in zip(labels, preds, strict=True))
    fp = sum(label == 0 and p == 1 for label, p in zip(labels, preds, strict=True))
    fn = sum(label == 1 and p == 0 for label, p in zip(labels, preds, strict=True))
    tn = len(labels) - tp - fp - fn
    return {
        "accuracy": (tp + tn) / len(labels) if labels else None,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
    }


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))]


def run_judge_eval(
    cases_path: str, judge_url: str, judge_model: str, tokenizer: str, reward_kwargs: dict | None = None
) -> dict:
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    from .prompt_meter import load_tokenizer
    from .reward.judge_client import JudgeConfigError
    from .reward.loop import make_batch, reward_config

    cases, skipped = load_cases(cases_path)
    tok = load_tokenizer(tokenizer)
    settings = {"judge_base_url": judge_url, "judge_model": judge_model, **(reward_kwargs or {})}
    try:
        worker = RewardLoopWorker(reward_config(tokenizer, settings, num_workers=1))
    except JudgeConfigError as e:
        raise UserError(str(e)) from None
    rows = [
        {
            "prompt": [{"role": "user", "content": "judge-eval"}],
            "data_source": "rlpt_judge_eval",
            "reward_model": {"ground_truth": c["reference"]},
            "extra_info": {"line": c["line"]},
        }
        for c in cases
    ]
    batch = make_batch(rows, [c["response"] for c in cases], tok)
    latencies: list[float] = []

    async def one(i: int) -> dict:
        t0 = time.perf_counter()
        out = await worker.compute_score(batch[i : i + 1])
        latencies.append(time.perf_counter() - t0)
        return out

    async def run_all():
        try:
            return await asyncio.gather(*(one(i) for i in range(len(cases))))
        finally:
            await worker.reward_manager.client.aclose()

    t0 = time.perf_counter()
    try:
        outputs = asyncio.run(run_all())
    except JudgeConfigError as e:
        raise UserError(str(e)) from None
    seconds = time.perf_counter() - t0
    preds = [int(o["reward_score"]) for o in outputs]
    infos = [o["reward_extra_info"] for o in outputs]
    counters = {k: int(sum(i[k] for i in infos)) for k in COUNTERS}
    judged_latency = [lat for lat, i in zip(latencies, infos, strict=True) if i["judge_called"]]
    return {
        "cases": len(cases),
        "skipped": skipped,
        **agreement([c["label"] for c in cases], preds),
        "judge_requests": int(sum(i["judge_requests"] for i in infos)),
        "judge_calls_avoided": len(cases) - counters["judge_called"],
        "counters": counters,
        "seconds": seconds,
        "samples_per_s": len(cases) / seconds if seconds else None,
        "latency_s": {f"p{q}": _percentile(latencies, q) for q in (50, 90, 99)},
        "judged_latency_s": {f"p{q}": _percentile(judged_latency, q) for q in (50, 90, 99)},
        "per_case": [
            {"line": c["line"], "label": c["label"], "verdict": p, **i}
            for c, p, i in zip(cases, preds, infos, strict=True)
        ],
    }


def format_report(report: dict) -> str:
    def f(x):
        return "n/a" if x is None else f"{x:.3f}"

    c = report["confusion"]
    lat, jl = report["latency_s"], report["judged_latency_s"]
    return "\n".join(
        [
            f"cases: {report['cases']}" + (f" (skipped: {report['skipped']})" if report["skipped"] else ""),
            f"accuracy {f(report['accuracy'])}  precision {f(report['precision'])}  recall {f(report['recall'])}",
            f"confusion: label 1 -> judged 1: {c['tp']}, judged 0: {c['fn']}; label 0 -> judged 1: {c['fp']}, "
            f"judged 0: {c['tn']}",
            f"judge requests: {report['judge_requests']}; samples that needed no call: {report['judge_calls_avoided']}",
            f"counters: {report['counters']}",
            f"throughput: {report['samples_per_s']:.2f} samples/s over {report['seconds']:.1f} s",
            f"latency p50/p90/p99: {f(lat['p50'])}/{f(lat['p90'])}/{f(lat['p99'])} s (judged samples: "
            f"{f(jl['p50'])}/{f(jl['p90'])}/{f(jl['p99'])} s)",
        ]
    )
