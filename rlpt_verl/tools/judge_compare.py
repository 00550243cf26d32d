"""`rlpt judge-eval --compare-modes`: the same labelled cases judged in every prompt layout and reply mode.

Each combination is one `rlpt judge-eval` run (the `rlpt` manager in verl's RewardLoopWorker, its own
client and cache), so what differs is only how the judge is asked: the paper's prompt or the cache-friendly
layout (``judge_prompt_layout``), free generation, a constrained choice or one token's log-probabilities
(``judge_reply_mode``). A combination the server cannot do fails its preflight and is reported as such.

Reported per combination: agreement with the labels (judged cases) and with the baseline (paper + generate)
on the cases both sent to the judge; calls; prompt and completion tokens per call; wall seconds per call;
and, when the server exposes vLLM's ``/metrics``, the prefix-cache hit rate of its requests (the cache is
reset between combinations where the server allows it: ``VLLM_SERVER_DEV_MODE=1``).
"""

from __future__ import annotations

import itertools
import re
import urllib.error
import urllib.request

from rlpt_verl.errors import UserError
from rlpt_verl.llm_replies import REPLY_MODES
from rlpt_verl.prompts import JUDGE_LAYOUTS

BASELINE = ("paper", "generate")
COMBOS = tuple(itertools.product(JUDGE_LAYOUTS, REPLY_MODES))


def combo_name(layout: str, mode: str) -> str:
    return f"{layout}+{mode}"


def _server_root(url: str) -> str:
    url = url.rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url[: -len("/v1")] if url.endswith("/v1") else url


_METRIC = re.compile(r"^(vllm:prefix_cache_(?:hits|queries)_total)\{[^}]*\}\s+([0-9.eE+-]+)$", re.M)


def prefix_cache_counters(judge_url: str, timeout_s: float = 5.0) -> dict[str, float] | None:
    """vLLM's prefix-cache counters (tokens queried, tokens found cached), or None when the server has none."""
    try:
        with urllib.request.urlopen(_server_root(judge_url) + "/metrics", timeout=timeout_s) as resp:
            text = resp.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, ValueError):
        return None
    found: dict[str, float] = {}
    for name, value in _METRIC.findall(text):
        key = "hits" if "hits" in name else "queries"
        found[key] = found.get(key, 0.0) + float(value)
    return found if {"hits", "queries"} <= set(found) else None


def hit_rate(before: dict | None, after: dict | None) -> float | None:
    """Share of the prompt tokens between two counter readings that the prefix cache served.

    >>> hit_rate({"hits": 10.0, "queries": 100.0}, {"hits": 70.0, "queries": 200.0})
    0.6
    >>> hit_rate(None, {"hits": 1.0, "queries": 2.0}) is None
    True
    """
    if not before or not after or after["queries"] <= before["queries"]:
        return None
    return (after["hits"] - before["hits"]) / (after["queries"] - before["queries"])


def reset_prefix_cache(judge_url: str, timeout_s: float = 10.0) -> bool:
    """Empty the server's prefix cache (vLLM with ``VLLM_SERVER_DEV_MODE=1``); False where it cannot."""
    request = urllib.request.Request(_server_root(judge_url) + "/reset_prefix_cache", data=b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _sent_to_judge(case: dict) -> bool:
    return bool(case.get("judge_called") or case.get("cache_hit")) and case.get("verdict") is not None


def mode_agreement(a: list[dict], b: list[dict]) -> tuple[float | None, int]:
    """(share of equal verdicts, cases) over the cases both runs sent to the judge (rules decide alike in all).

    >>> x = [{"verdict": 1, "judge_called": 1}, {"verdict": 0, "judge_called": 1}, {"verdict": 0, "shortcut": 1}]
    >>> y = [{"verdict": 1, "judge_called": 1}, {"verdict": 1, "judge_called": 1}, {"verdict": 0, "shortcut": 1}]
    >>> mode_agreement(x, y)
    (0.5, 2)
    """
    pairs = [(p["verdict"], q["verdict"]) for p, q in zip(a, b, strict=True) if _sent_to_judge(p) and _sent_to_judge(q)]
    if not pairs:
        return None, 0
    return sum(p == q for p, q in pairs) / len(pairs), len(pairs)


def _row(report: dict) -> dict:
    cost = report.get("judge_cost") or {}
    calls = cost.get("calls") or 0.0
    return {
        "judged": report["judged"],
        "unjudged": report["unjudged"],
        "unjudged_by_reason": report["unjudged_by_reason"],
        "accuracy": report["accuracy"],
        "calls": calls,
        "requests": cost.get("requests", 0.0),
        "prompt_tokens_per_call": cost.get("prompt_tokens", 0.0) / calls if calls else None,
        "completion_tokens_per_call": cost.get("completion_tokens", 0.0) / calls if calls else None,
        "tokens_estimated": bool(cost.get("tokens_estimated")),
        "seconds": report["seconds"],
        "seconds_per_call": report["seconds"] / calls if calls else None,
        "seconds_per_request": report["seconds"] / cost["requests"] if cost.get("requests") else None,
    }


def compare_modes(
    cases_path: str,
    judge_url: str,
    judge_model: str,
    tokenizer: str,
    reward_kwargs: dict | None = None,
    combos: tuple[tuple[str, str], ...] = COMBOS,
) -> dict:
    """Run every combination; the report holds one row per combination and the agreement between them."""
    from rlpt_verl.reward.judge_replicas import JudgeReplicas
    from rlpt_verl.tools.judge_eval import run_judge_eval

    base = {k: v for k, v in (reward_kwargs or {}).items() if k not in ("judge_prompt_layout", "judge_reply_mode")}
    rows: dict[str, dict] = {}
    per_case: dict[str, list[dict]] = {}
    resets = []
    for layout, mode in combos:
        name = combo_name(layout, mode)
        resets.append(reset_prefix_cache(judge_url))
        before = prefix_cache_counters(judge_url)
        kwargs = {**base, "judge_prompt_layout": layout, "judge_reply_mode": mode}
        JudgeReplicas.forget_shared()  # no verdict, cache entry or failure window carried over from the last run
        try:
            report = run_judge_eval(cases_path, judge_url, judge_model, tokenizer, kwargs)
        except UserError as e:  # the preflight refused this mode (or the settings): say so, go on
            rows[name] = {"unsupported": str(e)}
            continue
        rows[name] = {**_row(report), "prefix_cache_hit_rate": hit_rate(before, prefix_cache_counters(judge_url))}
        if report["stopped"]:
            rows[name]["stopped"] = report["stopped"]
        per_case[name] = report["per_case"]
    baseline = combo_name(*BASELINE)
    for name, cases in per_case.items():
        if baseline in per_case:
            rows[name]["agreement_with_baseline"], rows[name]["agreement_cases"] = mode_agreement(
                cases, per_case[baseline]
            )
    agreement = {a: {b: mode_agreement(per_case[a], per_case[b]) for b in per_case if b != a} for a in per_case}
    base_row = rows.get(baseline) or {}
    for row in rows.values():
        spc, base_spc = row.get("seconds_per_call"), base_row.get("seconds_per_call")
        row["speedup_vs_baseline"] = base_spc / spc if spc and base_spc else None
    return {
        "cases": cases_path,
        "judge": {"url": judge_url, "model": judge_model},
        "baseline": baseline,
        "prefix_cache_reset": all(resets) if resets else False,
        "combinations": rows,
        "agreement": {a: {b: {"share": v[0], "cases": v[1]} for b, v in row.items()} for a, row in agreement.items()},
        "per_case": per_case,
    }


def format_comparison(report: dict) -> str:
    def f(x, spec=".3f"):
        return "n/a" if x is None else format(x, spec)

    lines = [
        f"judge {report['judge']['model']} at {report['judge']['url']}; baseline {report['baseline']}"
        + ("" if report["prefix_cache_reset"] else " (prefix cache not reset between combinations)"),
        f"{'combination':<24} {'judged':>6} {'acc':>6} {'agree':>6} {'calls':>5} {'prompt/call':>11} "
        f"{'compl/call':>10} {'s/call':>7} {'s/req':>6} {'speedup':>7} {'cache hit':>9}",
    ]
    for name, row in report["combinations"].items():
        if "unsupported" in row:
            lines.append(f"{name:<24} unsupported: {row['unsupported']}")
            continue
        lines.append(
            f"{name:<24} {row['judged']:>6} {f(row['accuracy']):>6} {f(row.get('agreement_with_baseline')):>6} "
            f"{row['calls']:>5.0f} {f(row['prompt_tokens_per_call'], '.1f'):>11} "
            f"{f(row['completion_tokens_per_call'], '.2f'):>10} {f(row['seconds_per_call']):>7} "
            f"{f(row['seconds_per_request']):>6} "
            f"{f(row['speedup_vs_baseline'], '.2f'):>7} {f(row['prefix_cache_hit_rate']):>9}"
        )
    names = list(report.get("agreement") or {})
    if len(names) > 1:
        lines.append("agreement between combinations (share of equal verdicts / cases both sent to the judge):")
        for a in names:
            cells = [
                f"{b}: {f(report['agreement'][a][b]['share'], '.2f')}/{report['agreement'][a][b]['cases']}"
                for b in names
                if b != a
            ]
            lines.append(f"  {a:<22} " + "  ".join(cells))
    lines.append(
        "acc: agreement with the labels (judged cases); agree: with the baseline on the cases both sent to the judge; "
        "s/call, s/req: wall seconds per judge call (a sample's verdict, re-asks included) and per HTTP request; "
        "speedup: the baseline's s/call over this one's; cache hit: share of prompt tokens vLLM's prefix cache served"
    )
    return "\n".join(lines)
