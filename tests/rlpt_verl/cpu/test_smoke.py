"""The smoke step's command line: sizes and CPU overrides compose with every GRPO recipe, pass verl's own
config validation, change nothing else a user set, and the metrics reader merges verl's file-logger lines."""

import json
import os

import pytest

from rlpt_verl.cpu.smoke import CPU_ENV, CPU_OVERRIDES, N, read_metrics, size_overrides

from ...recipes.test_recipes import compose


@pytest.mark.parametrize("name", ["rlpt_grpo_fsdp", "rpt_grpo_fsdp", "rlvr_grpo_fsdp"])
def test_smoke_overrides_compose_and_validate(name, tokenizer_dir, tmp_path):
    from omegaconf import OmegaConf
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    full = compose(name, [f"actor_rollout_ref.model.path={tokenizer_dir}"])
    cfg = compose(name, [*size_overrides(tokenizer_dir, str(tmp_path)), *CPU_OVERRIDES])
    OmegaConf.resolve(cfg)
    validate_config(cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    a, r = cfg.actor_rollout_ref.actor, cfg.actor_rollout_ref.rollout
    assert cfg.data.train_batch_size * r.n % cfg.trainer.n_gpus_per_node == 0 and a.ppo_mini_batch_size == 4
    assert a.fsdp_config.mixed_precision.param_dtype == "fp32" and r.enable_sleep_mode is False
    assert cfg.trainer.total_training_steps == 1 and cfg.trainer.save_freq == 1
    assert r.n == N and r.max_num_seqs >= cfg.data.train_batch_size * N  # a whole step's samples in one vLLM batch
    # one TransferQueue storage process, not verl's 8 (each a Ray actor importing torch on a 2-core machine)
    assert cfg.transfer_queue.backend.SimpleStorage.num_data_storage_units == 1
    # the recipe's own choices are untouched: algorithm, reward, optimiser, data files, sampling
    assert cfg.algorithm == full.algorithm and cfg.reward.reward_manager == full.reward.reward_manager
    assert a.optim == full.actor_rollout_ref.actor.optim and cfg.data.train_files == full.data.train_files
    assert r.temperature == full.actor_rollout_ref.rollout.temperature
    assert a.loss_agg_mode == full.actor_rollout_ref.actor.loss_agg_mode


def test_cpu_env_keeps_ray_from_pinning_torch_to_one_thread():
    # Ray sets OMP_NUM_THREADS=1 in actors that reserve no CPUs unless it is already set; the FSDP worker
    # then updates on one core
    import ray._private.utils as ray_utils

    assert "OMP_NUM_THREADS" in __import__("inspect").getsource(ray_utils.set_omp_num_threads_if_unset)
    assert int(CPU_ENV["OMP_NUM_THREADS"]) == os.cpu_count()


def test_read_metrics_merges_lines_of_a_step(tmp_path):
    p = tmp_path / "m.jsonl"
    rows = [{"step": 0, "data": {"val-core/x": 0.5}}, {"step": 1, "data": {"a": 1.0}}, {"step": 1, "data": {"b": 2}}]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert read_metrics(str(p)) == {0: {"val-core/x": 0.5}, 1: {"a": 1.0, "b": 2}}


def test_no_gradient_bound_is_exact_for_two_outcomes_and_holds_by_simulation():
    import random

    from rlpt_verl.cpu.smoke import no_gradient_bound

    # every sample either wins or loses: the bound is the exact chance w^n + (1-w)^n per group
    rows = [{"win": 0.3, "lose": 0.7}, {"win": 0.5, "lose": 0.5}, {"win": 0.9, "lose": 0.1}]
    exact = [(0.3**4 + 0.7**4), (0.5**4 + 0.5**4), (0.9**4 + 0.1**4)]
    assert no_gradient_bound(rows, n=4, batch=1) == pytest.approx(max(exact))
    assert no_gradient_bound(rows, n=4, batch=2) == pytest.approx(sorted(exact)[-1] * sorted(exact)[-2])
    # a third outcome (e.g. the judge's verdict, either way) only lowers the chance: simulate it
    rng = random.Random(0)
    rows = [{"win": 0.4, "lose": 0.3}, {"win": 0.2, "lose": 0.5}]
    bound = no_gradient_bound(rows, n=3, batch=2)
    trials, flat = 20000, 0
    for _ in range(trials):
        groups = []
        for r in rows:
            scores = []
            for _ in range(3):
                u = rng.random()
                scores.append(1 if u < r["win"] else 0 if u < r["win"] + r["lose"] else rng.random() < 0.5)
            groups.append(len(set(scores)) == 1)
        flat += all(groups)
    exact = 1.0
    for r in rows:  # the third outcome splits evenly: P(1) = win + rest/2
        rest = 1 - r["win"] - r["lose"]
        exact *= (r["win"] + rest / 2) ** 3 + (r["lose"] + rest / 2) ** 3
    assert abs(flat / trials - exact) < 4 * (exact * (1 - exact) / trials) ** 0.5
    assert exact <= bound  # holds (and is exact when every sample wins or loses, above)
    assert no_gradient_bound([{"win": 0.0, "lose": 1.0}] * 4, n=4, batch=4) == 1.0
