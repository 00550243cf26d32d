"""Two pieces of Python the GPUs wait on, each against its baseline in the same process:

1. validation metrics: verl 0.9.1's ``process_validation_metrics`` on every numeric extra key of the `rlpt`
   manager (its 1,000-iteration bootstrap per prompt and key) vs the RLPT trainer's split (bootstrap only
   ``acc``/``reward``, plain means for the rest), on the same synthetic validation of P prompts x N samples;
2. the judge client's gate under a deep queue: Q requests waiting on C slots, wake-all (what the gate did)
   vs wake-one (what it does), with zero-cost "requests", so the figure is the gate's own overhead.

Usage: python benchmarks/bench_cluster_paths.py [--prompts 200 --samples 4 --queue 2000 --slots 32]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

from verl.trainer.ppo.metric_utils import process_validation_metrics

from rlpt_verl.llm_gate import Clock, Gate
from rlpt_verl.llm_settings import LLMSettings
from rlpt_verl.reward.rlpt_manager import EXTRA_KEYS
from rlpt_verl.train.trainer import BOOTSTRAPPED, plain_means


def validation_inputs(prompts: int, samples: int, seed: int = 0):
    rng = random.Random(seed)
    n = prompts * samples
    sources = ["rlpt_asr" if i % 2 else "rlpt_msr" for i in range(prompts) for _ in range(samples)]
    uids = [f"u{i}" for i in range(prompts) for _ in range(samples)]
    infos = {k: [float(rng.random() < 0.4) for _ in range(n)] for k in EXTRA_KEYS}
    infos["reward"] = list(infos["acc"])
    return sources, uids, infos


def bench_validation(prompts: int, samples: int) -> tuple[float, float]:
    sources, uids, infos = validation_inputs(prompts, samples)
    t0 = time.perf_counter()
    process_validation_metrics(sources, uids, infos)
    every_key = time.perf_counter() - t0
    t0 = time.perf_counter()
    process_validation_metrics(sources, uids, {k: v for k, v in infos.items() if k in BOOTSTRAPPED})
    plain_means(sources, uids, infos)
    split = time.perf_counter() - t0
    return every_key, split


async def _drain(queue: int, slots: int, wake_all: bool) -> float:
    gate = Gate(LLMSettings(base_url="http://127.0.0.1:9/v1", model="m", concurrency=slots, initial_concurrency=slots))
    if wake_all:  # the gate before: every completion woke every waiter

        def wake_everyone() -> None:
            for waiter in list(gate._waiters):
                if not waiter.done():
                    waiter.set_result(None)

        gate._wake = wake_everyone

    async def request() -> None:
        probe = await gate.enter(Clock(600.0))
        await asyncio.sleep(0)  # the "request": one loop turn
        await gate.leave(probe, 0.01, None)

    t0 = time.perf_counter()
    await asyncio.gather(*(request() for _ in range(queue)))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=200)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--queue", type=int, default=2000)
    ap.add_argument("--slots", type=int, default=32)
    args = ap.parse_args()
    every_key, split = bench_validation(args.prompts, args.samples)
    print(f"validation metrics, {args.prompts} prompts x {args.samples} samples, {len(EXTRA_KEYS)} extra keys:")
    print(f"  verl, every key bootstrapped: {every_key:.2f} s")
    print(f"  RLPT trainer, acc/reward bootstrapped, the rest plain means: {split:.2f} s")
    print(f"  ratio {every_key / split:.1f}x less CPU while the GPUs wait")
    wake_all = asyncio.run(_drain(args.queue, args.slots, wake_all=True))
    wake_one = asyncio.run(_drain(args.queue, args.slots, wake_all=False))
    print(f"judge gate, {args.queue} queued requests on {args.slots} slots:")
    print(f"  wake-all {wake_all:.2f} s, wake-one {wake_one:.2f} s: ratio {wake_all / wake_one:.1f}x")


if __name__ == "__main__":
    main()
