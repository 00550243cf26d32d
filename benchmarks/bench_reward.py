"""Benchmark the `rlpt` reward manager against a plain async client, same judge server, same run.

(1) raw: a plain aiohttp client posts the judge prompts straight to the judge, `--concurrency` at a time;
(2) manager: the same samples scored by the `rlpt` manager through verl's RewardLoopManager (one Ray
    reward worker with the same concurrency); ratio (2)/(1), target >= 0.95;
(3) manager CPU time per sample excluding the judge (in-process RewardLoopWorker; judge-free samples,
    and judged samples where the judge's time is in another process), target <= 2 ms;
(4) a GRPO-like batch (8 responses per prompt with exact copies, whitespace variants, textual prefixes and
    format failures): judge calls avoided.

The judge is `transformers serve` with SmolLM2-135M-Instruct on 127.0.0.1 (CPU), so absolute numbers
are small; the ratios are the point.

    python benchmarks/bench_reward.py [--samples 48] [--concurrency 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile
import time
from collections import Counter

import aiohttp
import pyarrow.parquet as pq

from rlpt_verl.reward.judge_cost import AVOIDED, avoided_reason
from rlpt_verl.reward.loop import make_batch, per_sample, reward_config
from rlpt_verl.reward.prefix_judge import judge_prompt, parse_verdict, precheck
from rlpt_verl.tasks.prompt_meter import load_tokenizer
from rlpt_verl.tasks.rlpt import BuildConfig, run_build
from rlpt_verl.tools import assets
from rlpt_verl.tools.local_judge import LocalJudgeServer

OPEN, CLOSE = "<|startofprediction|>", "<|endofprediction|>"


async def raw_client(
    server: LocalJudgeServer, prompts: list[str], concurrency: int, extra: dict | None = None
) -> tuple[float, int]:
    """The same protocol by hand: post, parse strictly, ask once more if unparsable. (seconds, requests)"""
    sem = asyncio.Semaphore(concurrency)
    requests = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def one(p):
            nonlocal requests
            body = {
                "model": server.model,
                "messages": [{"role": "user", "content": p}],
                "temperature": 0.0,
                "max_tokens": 8,
                **(extra or {}),
            }
            for _ in range(2):
                requests += 1
                async with sem, session.post(server.url + "/chat/completions", json=body) as resp:
                    reply = (await resp.json())["choices"][0]["message"]["content"]
                if parse_verdict(reply) is not None:
                    break

        t0 = time.perf_counter()
        await asyncio.gather(*(one(p) for p in prompts))
        return time.perf_counter() - t0, requests


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=48)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    model_dir = assets.smollm2_dir(with_model=True)
    tok = load_tokenizer(model_dir)
    work = tempfile.mkdtemp(prefix="bench_reward.")
    corpus = assets.pydoc_topics_jsonl(os.path.join(work, "pydoc.jsonl"))
    run_build(
        BuildConfig(
            inputs=(corpus,),
            output=work,
            tokenizer=model_dir,
            max_prompt_tokens=1024,
            max_targets_per_doc=8,
            val_docs=2,
        ),
        quiet=True,
    )

    def needs_judge(r, tag):
        return f"Reasoning. {OPEN}{tag}: {r['extra_info']['target'].lower()}{CLOSE}"

    rows, seen = [], set()
    for r in pq.read_table(os.path.join(work, "train_asr.parquet")).to_pylist():
        ref = r["reward_model"]["ground_truth"]
        if len(ref) < 400 and ref not in seen and precheck(needs_judge(r, "Raw"), ref).needs_judge:
            seen.add(ref)
            rows.append(r)
    rows = rows[: args.samples * 2]
    judged_rows, warm_rows = rows[: args.samples], rows[args.samples :]

    import ray
    from verl.experimental.reward_loop.reward_loop import RewardLoopManager, RewardLoopWorker

    with LocalJudgeServer(model_dir) as server:
        # SmolLM2 does not answer "Score: 0/1" by itself, and a reply without a verdict is a missing sample: its
        # reply is constrained to the digit (logit_bias, one token), in both clients alike. This benchmark
        # measures transport overhead, not the judge.
        verdict = server.verdict_settings
        settings = {
            "judge_base_url": server.url,
            "judge_model": server.model,
            "judge_concurrency": args.concurrency,
            "judge_initial_concurrency": args.concurrency,
            **verdict,
        }
        raw_extra = {**verdict["judge_extra_body"], "max_tokens": verdict["judge_max_tokens"]}
        # (1) raw client, then (2) the manager, on the same prompts (fresh predictions so no cache helps).
        # Interleaved rounds (raw, manager, raw, manager) with fresh predictions each time; best of each.
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
        raw_runs, manager_runs, raw_cpu = [], [], []
        try:
            manager = RewardLoopManager(reward_config(model_dir, settings, num_workers=1))
            warm = make_batch(warm_rows[:2], [f"{OPEN}{r['extra_info']['target']}{CLOSE}" for r in warm_rows[:2]], tok)
            manager.compute_rm_score(warm)  # actors started and warm; shortcut samples, no judge call
            for round_ in range(args.rounds):
                tag = f"Round {round_}"
                prompts = [
                    judge_prompt(r["reward_model"]["ground_truth"], f"{tag}: {r['extra_info']['target'].lower()}")
                    for r in judged_rows
                ]
                r0 = resource.getrusage(resource.RUSAGE_SELF)
                raw_runs.append(asyncio.run(raw_client(server, prompts, args.concurrency, raw_extra)))
                r1 = resource.getrusage(resource.RUSAGE_SELF)
                raw_cpu.append((r1.ru_utime - r0.ru_utime) / raw_runs[-1][1] * 1e3)
                batch = make_batch(judged_rows, [needs_judge(r, tag) for r in judged_rows], tok)
                t0 = time.perf_counter()
                results = per_sample(manager.compute_rm_score(batch))
                manager_runs.append((time.perf_counter() - t0, sum(r["judge_requests"] for r in results)))
        finally:
            ray.shutdown()
        raw_s, raw_requests = min(raw_runs)
        manager_s, requests = min(manager_runs)
        assert sum(r["judge_called"] for r in results) == len(judged_rows), "every sample should need the judge"
        n = len(judged_rows)
        print(
            f"(1) raw async client: {n} samples in {raw_s:.2f} s = {n / raw_s:.2f} samples/s "
            f"({raw_requests} requests, {raw_requests / raw_s:.2f}/s)"
        )
        print(
            f"(2) rlpt manager via verl RewardLoopManager: {manager_s:.2f} s = {n / manager_s:.2f} samples/s "
            f"({requests:.0f} requests, {requests / manager_s:.2f}/s)"
        )
        print(
            f"    (best of {args.rounds} interleaved rounds each; all raw: {[round(r[0], 1) for r in raw_runs]} s, "
            f"all manager: {[round(m[0], 1) for m in manager_runs]} s)"
        )
        print(
            f"    ratio (2)/(1): {raw_s / manager_s:.3f} samples/s, "
            f"{(requests / manager_s) / (raw_requests / raw_s):.3f} requests/s (target >= 0.95)"
        )

        # (3) CPU time in the manager's process, per sample, the judge excluded.
        worker = RewardLoopWorker(reward_config(model_dir, settings, num_workers=1))
        free = make_batch(
            rows * 20,
            [f"{OPEN}{r['extra_info']['target']}{CLOSE}" if i % 2 else "no tags" for i, r in enumerate(rows * 20)],
            tok,
        )
        c0 = time.process_time()
        asyncio.run(worker.compute_score_batch(free))
        cpu_free = (time.process_time() - c0) / len(free) * 1e3
        warm_judged = make_batch(warm_rows[:8], [needs_judge(r, "Warm") for r in warm_rows[:8]], tok)
        judged = make_batch(judged_rows, [needs_judge(r, "CPU") for r in judged_rows], tok)

        async def measure_judged():
            await worker.compute_score_batch(warm_judged)  # session and connection pool set up in this loop
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            out = await worker.compute_score_batch(judged)
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            await worker.reward_manager.client.aclose()
            requests = sum(o["reward_extra_info"]["judge_requests"] for o in out)
            return r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime, requests

        user, system, judged_requests = asyncio.run(measure_judged())
        cpu_judged = user / len(judged_rows) * 1e3
        sys_judged = system / len(judged_rows) * 1e3
        print(
            f"(3) manager CPU per sample: {cpu_free:.3f} ms judge-free ({len(free)} samples); with a judge call "
            f"({judged_requests / len(judged_rows):.1f} requests each): {cpu_judged:.3f} ms user + "
            f"{sys_judged:.3f} ms kernel (loopback TCP) (target <= 2 ms); for scale, the plain aiohttp client "
            f"alone spends {min(raw_cpu):.3f} ms user CPU per request"
        )

        # (4) a GRPO-like group of 8 responses per prompt.
        group_rows, group_resp = [], []
        for r in judged_rows[:12]:
            t = r["extra_info"]["target"]
            para = f"{OPEN}In short: {t.lower()}{CLOSE}"
            group = [
                "I am not sure what comes next.",  # format failure: no tags
                f"{OPEN} ... {CLOSE}",  # format failure: punctuation only
                f"Thinking... {OPEN}{t}{CLOSE}",  # textual prefix of the reference: shortcut
                para,
                para,  # an exact copy
                f"Other reasoning. {OPEN}In short:  {t.lower()} {CLOSE}",  # same prediction up to whitespace
                f"{OPEN}Perhaps: {t.lower()}{CLOSE}",
                f"{OPEN}Something unrelated about gardens.{CLOSE}",
            ]
            group_rows += [r] * 8
            group_resp += group
        worker2 = RewardLoopWorker(reward_config(model_dir, {**settings, "judge_cache_size": 8192}, num_workers=1))
        out = asyncio.run(worker2.compute_score_batch(make_batch(group_rows, group_resp, tok)))
        infos = [o["reward_extra_info"] for o in out]
        called = sum(i["judge_called"] for i in infos)
        reasons = Counter(avoided_reason(i) for i in infos)  # the same reasons a training step logs (rlpt/judge/)
        by_reason = ", ".join(f"{k} {reasons[k]}" for k in AVOIDED if reasons[k])
        print(
            f"(4) GRPO-like batch: {len(infos)} responses ({len(infos) // 8} prompts x 8), judge called for "
            f"{called:.0f}, avoided {len(infos) - called:.0f} ({100 * (1 - called / len(infos)):.1f}%): {by_reason}"
        )


if __name__ == "__main__":
    main()
