"""`rlpt judge-eval`: agreement of a judge server with labelled cases, through the training code path.

Each case is scored by the `rlpt` manager inside verl's own RewardLoopWorker (the object a training
run creates in every reward worker), so guards, shortcuts, caching and retries are the ones training
uses. Cases are JSON Lines: ``{"reference": ..., "label": 0|1}`` plus ``"prediction"`` (text) or
``"response"`` (a full policy response with prediction tags), and optionally ``"target"`` (the sentence s_i
the reference starts with; default: the reference's first sentence).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter

from rlpt_verl.errors import UserError
from rlpt_verl.prompts import PRED_CLOSE, PRED_OPEN
from rlpt_verl.reward.judge_cost import judge_cost_metrics

logger = logging.getLogger(__name__)


def run_bounded(main, grace_s: float = 10.0):
    """``asyncio.run`` whose shutdown cannot hang: leftover tasks get ``grace_s`` to end after their
    cancellation (asyncio.run waits for them without limit), then the loop is closed anyway."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            left = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in left:
                t.cancel()
            if left:
                loop.run_until_complete(asyncio.wait(left, timeout=grace_s))
            stuck = [t for t in left if not t.done()]
            if stuck:
                logger.warning("%d task(s) ignored cancellation; closing anyway: %s", len(stuck), stuck)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


COUNTERS = (
    "format_error",
    "too_long",
    "injection",
    "shortcut",
    "judge_called",
    "cache_hit",
    "judge_error",
    "context_overflow",
    "parse_failure",
    "too_short",
    "echo",
    "alternatives",
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
            target = case.get("target") if isinstance(case.get("target"), str) else None
            cases.append(
                {
                    "line": line_no,
                    "response": response,
                    "reference": case["reference"],
                    "target": target,
                    "label": int(case["label"]),
                }
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


def _unjudged_reason(info: dict) -> str | None:
    """Why a scored case carries no verdict of the judge (None: it has one, from the judge or a rule)."""
    if info["context_overflow"]:
        return "context_length"
    if info["judge_error"]:
        return "judge_error"
    if info["parse_failure"]:
        return "unparsable_reply"
    return None


def run_judge_eval(
    cases_path: str, judge_url: str, judge_model: str, tokenizer: str, reward_kwargs: dict | None = None
) -> dict:
    """Score every case; the report separates judged cases from those the judge never gave a verdict for.

    Accuracy, precision and recall cover judged cases only (a verdict of the judge, or of a rule such as
    the format check or the textual-prefix shortcut). A case whose call failed, whose reply never parsed,
    or that was not run because the judge went down is *unjudged*, counted by reason, never scored 0.
    """
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    from rlpt_verl.llm_client import LLMConfigError, LLMDownError, LLMUnreachableError
    from rlpt_verl.reward.loop import make_batch, reward_config
    from rlpt_verl.reward.rlpt_manager import UnjudgedSampleError
    from rlpt_verl.tasks.prompt_meter import load_tokenizer

    cases, skipped = load_cases(cases_path)
    tok = load_tokenizer(tokenizer)
    settings = {"judge_base_url": judge_url, "judge_model": judge_model, **(reward_kwargs or {})}
    try:
        worker = RewardLoopWorker(reward_config(tokenizer, settings, num_workers=1))
    except LLMConfigError as e:
        raise UserError(str(e)) from None
    client = worker.reward_manager.client
    rows = [
        {
            "prompt": [{"role": "user", "content": "judge-eval"}],
            "data_source": "rlpt_judge_eval",
            "reward_model": {"ground_truth": c["reference"]},
            "extra_info": {"line": c["line"], **({"target": c["target"]} if c.get("target") else {})},
        }
        for c in cases
    ]
    batch = make_batch(rows, [c["response"] for c in cases], tok)
    latencies: dict[int, float] = {}
    outputs: dict[int, dict] = {}
    stopped: list[str] = []

    async def one(i: int) -> None:
        t0 = time.perf_counter()
        try:
            outputs[i] = await worker.compute_score(batch[i : i + 1])
        except UnjudgedSampleError as e:  # in training a missing sample; here an unjudged case, by reason
            outputs[i] = {"reward_score": 0.0, "reward_extra_info": e.info}
        latencies[i] = time.perf_counter() - t0

    async def run_all() -> None:
        try:
            try:
                await client.check()
            except LLMUnreachableError as e:
                stopped.append(str(e))
                return
            tasks = [asyncio.ensure_future(one(i)) for i in range(len(cases))]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in tasks:
                t.cancel()
            pending = [t for t in tasks if not t.done()]
            if pending:  # bounded: a case that ignores its cancellation must not hold the report back
                await asyncio.wait(pending, timeout=30)
            # every finished task's exception is read (cases that failed after the first one included)
            errors = [t.exception() for t in tasks if t.done() and not t.cancelled()]
            errors = [e for e in errors if e is not None]
            for e in errors:
                if isinstance(e, LLMConfigError):
                    raise e
            for e in errors:
                if not isinstance(e, LLMDownError):
                    raise e
            if errors:
                stopped.append(str(errors[0]))
        finally:
            await client.aclose()

    t0 = time.perf_counter()
    try:
        run_bounded(run_all())
    except LLMConfigError as e:
        raise UserError(str(e)) from None
    seconds = time.perf_counter() - t0
    per_case, unjudged = [], Counter()
    for i, c in enumerate(cases):
        if i not in outputs:
            unjudged["not_run_judge_down"] += 1
            per_case.append({"line": c["line"], "label": c["label"], "verdict": None, "unjudged": "not_run"})
            continue
        info = outputs[i]["reward_extra_info"]
        reason = _unjudged_reason(info)
        unjudged.update([reason] if reason else [])
        verdict = None if reason else int(info["acc"])  # the 0/1 verdict (the reward may be soft)
        per_case.append({"line": c["line"], "label": c["label"], "verdict": verdict, "unjudged": reason, **info})
    judged = [p for p in per_case if p["verdict"] is not None]
    infos = [p for p in per_case if "acc" in p]
    counters = {k: int(sum(p[k] for p in infos)) for k in COUNTERS}
    judged_latency = [latencies[i] for i, p in enumerate(per_case) if i in latencies and p.get("judge_called")]
    lat = list(latencies.values())
    return {
        "cases": len(cases),
        "judged": len(judged),
        "unjudged": sum(unjudged.values()),
        "unjudged_by_reason": dict(sorted(unjudged.items())),
        "stopped": stopped[0] if stopped else None,
        "judge": {"url": client.settings.endpoint, "model": client.settings.model},
        "skipped": skipped,
        **agreement([p["label"] for p in judged], [p["verdict"] for p in judged]),
        "judge_requests": int(sum(p["judge_requests"] for p in infos)),
        # a verdict without a call (format, guards, shortcut, cache): a sample the judge never answered is not one
        "judge_calls_avoided": sum(1 for p in infos if not p["judge_called"] and p["verdict"] is not None),
        "counters": counters,
        "seconds": seconds,
        "samples_per_s": len(infos) / seconds if seconds else None,
        "latency_s": {f"p{q}": _percentile(lat, q) for q in (50, 90, 99)},
        "judged_latency_s": {f"p{q}": _percentile(judged_latency, q) for q in (50, 90, 99)},
        # the same figures a training step logs under rlpt/judge/ (rlpt_verl.reward.judge_cost)
        "judge_cost": {k.rsplit("rlpt/judge/", 1)[-1]: v for k, v in judge_cost_metrics(infos).items()},
        "per_case": per_case,
    }


def failure_line(report: dict) -> str | None:
    """One line when some cases have no verdict (the command then exits 1), else None."""
    if not report["unjudged"]:
        return None
    why = ", ".join(f"{k} {v}" for k, v in report["unjudged_by_reason"].items())
    line = (
        f"{report['unjudged']} of {report['cases']} cases were not judged ({why}) by {report['judge']['url']}; "
        f"the metrics cover the {report['judged']} judged cases"
    )
    return line + (f"; stopped: {report['stopped']}" if report["stopped"] else "")


def cost_line(cost: dict) -> str:
    """One line of what the judge cost: calls, what was avoided and why, tokens, time.

    >>> line = cost_line({"calls": 2.0, "requests": 3.0, "avoided/shortcut": 1.0, "avoided/format": 0.0,
    ...   "prompt_tokens": 600.0, "completion_tokens": 6.0, "tokens_estimated": 0.0, "seconds": 4.0,
    ...   "share_of_reward_time": 0.8})
    >>> print(line.replace("; ", chr(10)))
    judge cost: 2 calls (3 requests)
    avoided: shortcut 1
    tokens: 600 prompt + 6 completion
    4.0 s waiting on the judge (80% of reward time)
    """
    if not cost:
        return "judge cost: nothing scored"
    avoided = ", ".join(f"{k.split('/', 1)[1]} {v:.0f}" for k, v in cost.items() if k.startswith("avoided/") and v)
    estimated = " (estimated: the server reported no usage)" if cost.get("tokens_estimated") else ""
    return (
        f"judge cost: {cost['calls']:.0f} calls ({cost['requests']:.0f} requests); avoided: {avoided or 'none'}; "
        f"tokens: {cost['prompt_tokens']:.0f} prompt + {cost['completion_tokens']:.0f} completion{estimated}; "
        f"{cost['seconds']:.1f} s waiting on the judge ({100 * cost['share_of_reward_time']:.0f}% of reward time)"
    )


def format_report(report: dict) -> str:
    def f(x):
        return "n/a" if x is None else f"{x:.3f}"

    c = report["confusion"]
    lat, jl = report["latency_s"], report["judged_latency_s"]
    throughput = report["samples_per_s"]
    return "\n".join(
        [
            f"cases: {report['cases']}, judged: {report['judged']}, not judged: {report['unjudged']}"
            + (f" {report['unjudged_by_reason']}" if report["unjudged"] else "")
            + (f" (skipped lines: {report['skipped']})" if report["skipped"] else ""),
            f"judged cases: accuracy {f(report['accuracy'])}  precision {f(report['precision'])}  "
            f"recall {f(report['recall'])}",
            f"confusion: label 1 -> judged 1: {c['tp']}, judged 0: {c['fn']}; label 0 -> judged 1: {c['fp']}, "
            f"judged 0: {c['tn']}",
            f"judge requests: {report['judge_requests']}; samples that needed no call: {report['judge_calls_avoided']}",
            f"counters: {report['counters']}",
            f"throughput: {f(throughput)} samples/s over {report['seconds']:.1f} s",
            cost_line(report.get("judge_cost") or {}),
            (
                f"latency p50/p90/p99: {f(lat['p50'])}/{f(lat['p90'])}/{f(lat['p99'])} s (judged samples: "
                f"{f(jl['p50'])}/{f(jl['p90'])}/{f(jl['p99'])} s)"
                if report["judged"]
                else "latency: none (no case was judged)"
            ),
        ]
    )
