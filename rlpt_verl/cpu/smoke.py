"""The command line of a one-step smoke run of a recipe on the CPU platform, and how to read its result.

Two kinds of overrides, kept apart so a reader sees which is which:
- ``CPU_OVERRIDES``: what a CPU needs whatever the recipe (no flash-attention, no vLLM sleep mode, fp32
  because bf16 matmuls fall back to slow kernels on CPUs without AMX, eager vLLM, a smaller weight-sync
  bucket for /dev/shm, logical GPUs for Ray's resource pools);
- :func:`size_overrides`: the sizes (batch 4, n 6, short responses, one step, one GPU, one storage unit),
  nothing else.
Everything else is the recipe as a user runs it.
"""

from __future__ import annotations

import json
import math
import os

from . import VLLM_CPU_DEFAULTS

CPU_OVERRIDES: tuple[str, ...] = (
    "+actor_rollout_ref.model.override_config.attn_implementation=sdpa",
    "+actor_rollout_ref.actor.fsdp_config.mixed_precision.param_dtype=fp32",
    "actor_rollout_ref.actor.fsdp_config.use_torch_compile=false",
    "actor_rollout_ref.rollout.dtype=float32",
    "actor_rollout_ref.rollout.enforce_eager=true",
    "actor_rollout_ref.rollout.free_cache_engine=false",
    "+actor_rollout_ref.rollout.enable_sleep_mode=false",
    "actor_rollout_ref.rollout.checkpoint_engine.update_weights_bucket_megabytes=512",
    "ray_kwargs.ray_init.num_cpus=32",
    "+ray_kwargs.ray_init.num_gpus=1",
)

# Ray sets OMP_NUM_THREADS=1 in every actor that reserves no CPUs (ray/_private/utils.py,
# set_omp_num_threads_if_unset) unless the variable is already set: the FSDP worker then trains on one core
# (measured on 2 cores: update 57 -> 34 ms per token with it set).
CPU_ENV: dict[str, str] = {
    "VERL_PLATFORM": "cpu",
    "OMP_NUM_THREADS": str(os.cpu_count() or 1),
    **VLLM_CPU_DEFAULTS,
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_OFFLINE": "1",
}


BATCH = 4  # prompts per step
N = 6  # samples per prompt: with a policy that wins about 40% of its samples and loses about 45%, 4 groups
# of 6 all scoring alike (no gradient) has a chance near 1e-4 (e2e/smoke_policy.py measures it per row)


def size_overrides(
    model: str, out_dir: str, steps: int = 1, prompt_tokens: int = 256, response_tokens: int = 64
) -> list[str]:
    """Tiny sizes: ``BATCH`` prompts x ``N`` samples, one mini-batch, one GPU's worth of everything (one
    TransferQueue storage unit, not 8 processes), a checkpoint and a validation at every step, metrics to
    ``out_dir/metrics.jsonl`` (verl's file logger)."""
    return [
        f"actor_rollout_ref.model.path={model}",
        f"data.train_batch_size={BATCH}",
        f"data.max_prompt_length={prompt_tokens}",
        f"data.max_response_length={response_tokens}",
        f"actor_rollout_ref.rollout.n={N}",
        "actor_rollout_ref.rollout.val_kwargs.n=1",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={BATCH}",
        "actor_rollout_ref.actor.ppo_max_token_len_per_gpu=2048",
        "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
        f"actor_rollout_ref.rollout.max_model_len={prompt_tokens + response_tokens + 64}",
        f"actor_rollout_ref.rollout.max_num_batched_tokens={prompt_tokens + response_tokens + 64}",
        f"actor_rollout_ref.rollout.max_num_seqs={BATCH * N}",
        "actor_rollout_ref.rollout.agent.num_workers=1",
        "reward.num_workers=1",
        "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",
        "trainer.n_gpus_per_node=1",
        "trainer.nnodes=1",
        f"trainer.total_training_steps={steps}",
        "trainer.save_freq=1",
        "trainer.test_freq=1",
        "trainer.logger=[console,file]",
        f"trainer.default_local_dir={os.path.join(out_dir, 'checkpoints')}",
    ]


def config_args(recipe: str) -> list[str]:
    """Hydra's config arguments for a shipped recipe name or a YAML path (as ``rlpt doctor`` takes them).

    >>> config_args("rpt_grpo_fsdp")
    ['--config-path=pkg://rlpt_verl.recipes', '--config-name=rpt_grpo_fsdp']
    >>> config_args("/jobs/my_rlpt.yaml")
    ['--config-path=/jobs', '--config-name=my_rlpt']
    """
    if recipe.endswith((".yaml", ".yml")) or os.sep in recipe:
        path = os.path.abspath(recipe)
        return [
            f"--config-path={os.path.dirname(path)}",
            f"--config-name={os.path.splitext(os.path.basename(path))[0]}",
        ]
    return ["--config-path=pkg://rlpt_verl.recipes", f"--config-name={recipe}"]


def smoke_overrides(
    model: str,
    out_dir: str,
    user: list[str] | tuple[str, ...] = (),
    steps: int = 1,
    prompt_tokens: int = 256,
    response_tokens: int = 64,
) -> list[str]:
    """The user's overrides first, then the sizes and the CPU's needs: Hydra applies overrides in order, so a
    batch size copied from a cluster command cannot turn the smoke step into a day on a CPU."""
    return [
        *user,
        *size_overrides(model, out_dir, steps=steps, prompt_tokens=prompt_tokens, response_tokens=response_tokens),
        *CPU_OVERRIDES,
    ]


def smoke_command(python: str, recipe: str, overrides: list[str]) -> list[str]:
    """``python -m rlpt_verl.main_ppo`` for ``recipe`` with ``overrides`` (see :func:`smoke_overrides`)."""
    return [python, "-m", "rlpt_verl.main_ppo", *config_args(recipe), *overrides]


def read_metrics(path: str) -> dict[int, dict[str, float]]:
    """verl's file-logger JSON lines → {step: {metric: value}} (several lines of one step are merged)."""
    steps: dict[int, dict[str, float]] = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                steps.setdefault(int(row["step"]), {}).update(row["data"])
    return steps


def non_finite(metrics: dict[str, float], prefix: str) -> list[str]:
    """Names under ``prefix`` whose values are not finite numbers.

    >>> non_finite({"a/x": 1.0, "a/y": float("nan"), "b/z": float("inf")}, "a/")
    ['a/y']
    """
    bad = []
    for k, v in metrics.items():
        if k.startswith(prefix) and not (isinstance(v, (int, float)) and math.isfinite(v)):
            bad.append(k)
    return bad


def no_gradient_bound(rows: list[dict], n: int, batch: int) -> float:
    """Upper bound on the chance that a GRPO step over ``batch`` of these rows with ``n`` samples each has
    equal rewards in every group: zero advantages, no gradient, weights unchanged (correct GRPO, useless smoke).

    Each row has ``win`` (a sample's chance to score 1 is at least this) and ``lose`` (to score 0). A group's
    samples are independent, so they all score alike with chance at most ``(1-win)^n + (1-lose)^n``; a batch
    draws distinct rows, so the worst case is the product of the ``batch`` largest row bounds.

    >>> no_gradient_bound([{"win": 0.5, "lose": 0.5}] * 4, n=2, batch=4)
    0.0625
    >>> no_gradient_bound([{"win": 0.0, "lose": 1.0}], n=8, batch=1)
    1.0
    """
    per_row = sorted(((1 - r["win"]) ** n + (1 - r["lose"]) ** n for r in rows), reverse=True)
    return min(1.0, math.prod(per_row[:batch]))


# metrics whose values must be finite numbers after a step
CHECKED_PREFIXES = ("actor/", "critic/", "train-task/", "rlpt/", "val-core/")


def read_step(metrics: dict[int, dict[str, float]], step: int) -> tuple[list[str], list[str], list[str]]:
    """What verl's logged metrics say about a smoke run's ``step``: (problems, warnings, facts).

    A step without a gradient is a warning, not a problem: when every group's rewards are equal GRPO's
    advantages are 0 and the update is correctly nothing; the pipeline ran, but the update was not exercised.

    >>> p, w, f = read_step({1: {"actor/grad_norm": 0.0, "critic/score/mean": 0.0}}, 1)
    >>> p, w[0].split(":")[0]
    ([], 'no gradient')
    >>> read_step({0: {"val-core/x": 1.0}}, 1)[0]
    ['step 1 logged no metrics: it did not complete']
    """
    problems: list[str] = []
    warnings: list[str] = []
    facts: list[str] = []
    m = metrics.get(step)
    if not m:
        return [f"step {step} logged no metrics: it did not complete"], warnings, facts
    bad = sorted({k for prefix in CHECKED_PREFIXES for k in non_finite(m, prefix)})
    if bad:
        problems.append(f"{len(bad)} metric(s) not finite: {', '.join(bad[:6])}" + (" ..." if len(bad) > 6 else ""))

    def val(key: str) -> str:
        v = m.get(key)
        return "-" if v is None else f"{v:.3g}"

    facts.append(
        f"step {step}: {val('timing_s/step')} s (rollout {val('timing_s/gen')} s, update "
        f"{val('timing_s/update_actor')} s), score mean {val('critic/score/mean')}"
    )
    tasks = sorted(
        k[len("train-task/") : -len("/reward/mean")]
        for k in m
        if k.startswith("train-task/") and k.endswith("/reward/mean")
    )
    for task in tasks:
        samples = val(f"train-task/{task}/samples")
        facts.append(f"task {task}: reward {val(f'train-task/{task}/reward/mean')} over {samples} samples")
        errors = m.get(f"train-task/{task}/judge_error/rate")
        if errors:
            warnings.append(
                f"judge errors: {errors:.0%} of {task} samples got no verdict (is the judge at RLPT_JUDGE_URL up?)"
            )
    grad = m.get("actor/grad_norm")
    if grad is None:
        problems.append("no actor/grad_norm logged: the actor was not updated")
    elif grad == 0:
        warnings.append(
            f"no gradient: every group's rewards were equal (score mean {val('critic/score/mean')}), so GRPO's "
            "advantages and update were 0 - correct, but the update was not exercised; a policy that wins some "
            "samples and loses others (after SFT, or a larger model) gives one"
        )
    elif math.isfinite(grad):
        facts.append(f"the actor was updated: grad norm {grad:.3g}")
    missing = m.get("rlpt/rollout/missing_samples")
    if missing:
        warnings.append(f"{missing:.0f} rollout samples missing from the step (rlpt/rollout/missing_samples)")
    lam = [k for k in m if k.startswith("rlpt/lambda/weight_")]
    if lam:
        facts.append("lambda weights: " + ", ".join(f"{k.rsplit('/', 1)[1]} {m[k]:.3g}" for k in sorted(lam)))
    if any(k.startswith("val-core/") for step_m in metrics.values() for k in step_m):
        facts.append("validation ran")
    else:
        warnings.append("no val-core/* metrics: validation did not run (no val files, or trainer.test_freq)")
    return problems, warnings, facts
