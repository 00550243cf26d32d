"""Exact per-batch ASR:MSR composition for J = J_ASR + λ·J_MSR (arXiv 2509.19249; λ option 1). Pure logic.

With B prompts per step and m = round(B·λ/(1+λ)) of them MSR, the ratio of MSR to ASR prompts in every
batch is fixed; under ``actor.loss_agg_mode=seq-mean-token-mean`` every sequence weighs the same, so
the step's loss is (B-m)/B · J_ASR + m/B · J_MSR, i.e. proportional to J_ASR + (m/(B-m))·J_MSR ≈ J_ASR + λ·J_MSR.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

__all__ = ["msr_per_batch", "mixture_order", "epochs_to_cover", "resolve_msr_lambda", "DEFAULT_LAMBDA"]

DEFAULT_LAMBDA = 0.5  # the recipes' value; λ's only home is data.rlpt.msr_lambda


def resolve_msr_lambda(data_config) -> tuple[float, str]:
    """(λ, where it came from): ``data.rlpt.msr_lambda``, else the default 0.5.

    The build does not decide λ (it is a training setting), so nothing is read from a build report.

    >>> resolve_msr_lambda({"rlpt": {"msr_lambda": 0.25}}), resolve_msr_lambda({})
    ((0.25, 'data.rlpt.msr_lambda'), (0.5, 'default'))
    """
    rlpt_cfg = data_config.get("rlpt") or {}
    if rlpt_cfg.get("msr_lambda") is not None:
        return float(rlpt_cfg["msr_lambda"]), "data.rlpt.msr_lambda"
    return DEFAULT_LAMBDA, "default"


def msr_per_batch(batch_size: int, msr_lambda: float) -> int:
    """MSR prompts per batch: round-half-up of B·λ/(1+λ); must leave at least one of each task.

    >>> msr_per_batch(512, 0.5), msr_per_batch(8, 1.0), msr_per_batch(10, 0.25)
    (171, 4, 2)
    >>> msr_per_batch(4, 0.05)
    Traceback (most recent call last):
    ...
    ValueError: batch size 4 with msr_lambda=0.05 gives 0 MSR prompts per batch; raise the batch size or λ
    """
    if batch_size < 2:
        raise ValueError(f"batch size must be >= 2 to mix two tasks, got {batch_size}")
    if not msr_lambda > 0:
        raise ValueError(f"msr_lambda must be > 0, got {msr_lambda}")
    m = math.floor(batch_size * msr_lambda / (1 + msr_lambda) + 0.5)
    if m == 0 or m == batch_size:
        fix = "raise the batch size or λ" if m == 0 else "lower λ or raise the batch size"
        raise ValueError(f"batch size {batch_size} with msr_lambda={msr_lambda} gives {m} MSR prompts per batch; {fix}")
    return m


def mixture_order(
    asr: Sequence[int], msr: Sequence[int], batch_size: int, msr_lambda: float, seed: int, epoch: int = 0
) -> list[int]:
    """Row order of ``epoch`` in which every consecutive block of ``batch_size`` has exactly the MSR share.

    Both pools are shuffled once with ``seed``. An epoch has as many batches as the scarcer pool allows;
    of the other pool it uses the next rows after those the previous epoch used (wrapping around), so
    unused rows rotate in: every row is used within ``epochs_to_cover`` epochs. Each epoch's rows are
    reshuffled (seed and epoch) before they are cut into batches of B-m ASR and m MSR rows.

    >>> order = mixture_order(range(0, 10), range(100, 110), batch_size=4, msr_lambda=1/3, seed=0)
    >>> [sum(i >= 100 for i in order[k:k + 4]) for k in range(0, len(order), 4)]
    [1, 1, 1]
    >>> used = [set(i for i in mixture_order(range(10), range(100, 110), 4, 1/3, 0, e) if i >= 100) for e in (0, 1, 2)]
    >>> [len(u) for u in used], len(used[0] | used[1] | used[2])
    ([3, 3, 3], 9)
    """
    m = msr_per_batch(batch_size, msr_lambda)
    a = batch_size - m
    pools = [list(asr), list(msr)]
    base = random.Random(seed)
    for pool in pools:
        base.shuffle(pool)
    n_batches = min(len(pools[0]) // a, len(pools[1]) // m)
    rng = random.Random(f"rlpt-mixture:{seed}:{epoch}")
    taken = []
    for pool, per_batch in zip(pools, (a, m), strict=True):
        used = n_batches * per_batch
        rows = [pool[(epoch * used + j) % len(pool)] for j in range(used)] if used else []
        rng.shuffle(rows)
        taken.append(rows)
    order: list[int] = []
    for b in range(n_batches):
        batch = taken[0][b * a : (b + 1) * a] + taken[1][b * m : (b + 1) * m]
        rng.shuffle(batch)
        order.extend(batch)
    return order


def epochs_to_cover(n_asr: int, n_msr: int, batch_size: int, msr_lambda: float) -> int:
    """Epochs after which :func:`mixture_order` has used every row of both pools at least once.

    >>> epochs_to_cover(10, 10, 4, 1/3), epochs_to_cover(300, 100, 6, 0.5)
    (4, 2)
    """
    m = msr_per_batch(batch_size, msr_lambda)
    a = batch_size - m
    n_batches = min(n_asr // a, n_msr // m)
    if n_batches == 0:
        return 0
    return max(math.ceil(n_asr / (n_batches * a)), math.ceil(n_msr / (n_batches * m)))
