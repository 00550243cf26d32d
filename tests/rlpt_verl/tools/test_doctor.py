import os
import subprocess
import sys

import pytest


def doctor(*args, **env):
    return subprocess.run(
        [sys.executable, "-m", "rlpt_verl.cli", "doctor", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=600,
    )


def test_doctor_passes_here_including_a_ray_worker():
    p = doctor()
    assert p.returncode == 0, p.stdout + p.stderr
    assert "verl          0.9.1" in p.stdout
    assert "in a fresh python process: ok" in p.stdout
    assert "in a Ray worker process: ok" in p.stdout


def test_doctor_names_what_is_missing():
    p = doctor("--no-ray", VERL_USE_EXTERNAL_PLUGINS="none")
    assert p.returncode == 1
    assert "VERL_USE_EXTERNAL_PLUGINS='none' disables our plugin" in p.stderr
    assert "does not register reward manager(s) rlpt" in p.stderr


def test_doctor_recipe_ok_for_matching_data(built):
    d = built["dir"]
    files = [
        f"data.train_files=[{d}/train_asr.parquet,{d}/train_msr.parquet]",
        f"data.val_files=[{d}/val_asr.parquet,{d}/val_msr.parquet]",
        "data.max_prompt_length=512",
    ]
    p = doctor("rlpt_grpo_fsdp", *files)
    assert p.returncode == 0, p.stderr
    assert "rlpt_grpo_fsdp: no problems found" in p.stdout


def test_doctor_recipe_reports_each_cluster_trap(built, tmp_path):
    d = built["dir"]
    p = doctor(
        "rlpt_grpo_fsdp",
        f"data.train_files=[{d}/train_asr.parquet,{tmp_path}/missing.parquet]",
        f"data.val_files=[{d}/val_asr.parquet]",
        "data.max_prompt_length=256",
        "actor_rollout_ref.actor.loss_agg_mode=token-mean",
        "reward_model.reward_manager=rlpt",
        "reward.reward_model.enable=true",
        "reward.reward_model.nnodes=1",
    )
    assert p.returncode == 1
    err = p.stderr
    assert "legacy reward keys set (reward_model.reward_manager)" in err
    assert "/classify path and the rlpt manager is bypassed" in err
    assert "judge colocated on the training GPUs" in err
    assert "free_cache_engine=true" in err
    assert "λ is not exact: actor.loss_agg_mode=token-mean" in err
    assert f"data files not found: {tmp_path}/missing.parquet" in err
    assert "data.max_prompt_length=256 is smaller than the built data (prompts up to" in err
    assert "set data.max_prompt_length=512" in err


def test_doctor_recipe_reports_what_only_a_long_or_multi_node_run_meets(built):
    """Broken variants of the shipped recipe: an epoch cap below the step budget, every checkpoint kept, the
    loopback judge with two nodes, dynamic sampling under the mix λ. The recipe itself reports none of them
    (test_doctor_recipe_ok_for_matching_data)."""
    d = built["dir"]
    p = doctor(
        "rlpt_grpo_fsdp",
        f"data.train_files=[{d}/train_asr.parquet,{d}/train_msr.parquet]",
        f"data.val_files=[{d}/val_asr.parquet,{d}/val_msr.parquet]",
        "data.max_prompt_length=512",
        "data.train_batch_size=8",
        "actor_rollout_ref.rollout.n=2",
        "trainer.n_gpus_per_node=8",
        "trainer.total_epochs=2",
        "trainer.max_actor_ckpt_to_keep=null",
        "trainer.nnodes=2",
        "algorithm.filter_groups.enable=true",
    )
    assert p.returncode == 1
    err = p.stderr
    assert "trainer.total_epochs=2 x " in err and "fewer than trainer.total_training_steps=1000" in err
    assert "trainer.max_actor_ckpt_to_keep is unset" in err
    assert "trainer.nnodes=2 with the loopback judge URL http://127.0.0.1:8000/v1" in err
    assert "algorithm.filter_groups.enable=true (DAPO-style dynamic sampling)" in err


def test_doctor_recipe_bad_name_or_override():
    p = doctor("no_such_recipe")
    assert p.returncode == 2 and "cannot compose recipe 'no_such_recipe'" in p.stderr
    p = doctor("rlpt_grpo_fsdp", "data.no_such_key=1")
    assert p.returncode == 2 and "cannot compose recipe" in p.stderr and "Traceback" not in p.stderr


def test_doctor_rpt_recipe_checks_the_rpt_build(rpt_built):
    from ...conftest import RPT_BUDGET

    d = rpt_built["dir"]
    files = [f"data.train_files={d}/train.parquet", f"data.val_files=[{d}/val_easy.parquet,{d}/val_hard.parquet]"]
    p = doctor("rpt_grpo_fsdp", *files, f"data.max_prompt_length={RPT_BUDGET}")
    assert p.returncode == 0, p.stderr
    assert "rpt_grpo_fsdp: no problems found" in p.stdout
    p = doctor("rpt_grpo_fsdp", *files, "data.max_prompt_length=64")
    assert p.returncode == 1
    assert f"set data.max_prompt_length={RPT_BUDGET}" in p.stderr and "rpt_report.json" in p.stderr


def test_doctor_lambda_weight_mode(built):
    d = built["dir"]
    files = [
        f"data.train_files=[{d}/train_asr.parquet,{d}/train_msr.parquet]",
        f"data.val_files=[{d}/val_asr.parquet,{d}/val_msr.parquet]",
        "data.max_prompt_length=512",
        "data.rlpt.lambda_mode=weight",
    ]
    p = doctor("rlpt_grpo_fsdp", *files, "actor_rollout_ref.actor.loss_agg_mode=token-mean")
    assert p.returncode == 0, p.stderr  # token-mean is exact in weight mode
    p = doctor("rlpt_grpo_fsdp", *files, "actor_rollout_ref.actor.loss_agg_mode=token-sum")
    assert p.returncode == 1 and "has no exact weights for actor.loss_agg_mode=token-sum" in p.stderr


def rlpt_files(built):
    d = built["dir"]
    return [
        f"data.train_files=[{d}/train_asr.parquet,{d}/train_msr.parquet]",
        f"data.val_files=[{d}/val_asr.parquet,{d}/val_msr.parquet]",
        "data.max_prompt_length=512",
    ]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["reward.reward_kwargs.judge_base_url=''"], "judge_base_url is empty"),
        (["reward.reward_kwargs.judge_model=''"], "judge_model is empty"),
        (["reward.reward_manager.source=register", "reward.reward_manager.name=rlp"], "reward manager 'rlp'"),
        (["reward.reward_manager.name=RLPTRewardManagr"], "reward manager 'RLPTRewardManagr'"),
        (["+reward.reward_kwargs.judge_concurency=8"], "unknown rlpt reward setting(s) ['judge_concurency']"),
        (["+reward.reward_kwargs.min_target_coverge=0.5"], "unknown rlpt reward setting(s) ['min_target_coverge']"),
        (["reward.reward_kwargs.judge_concurrency=0"], "judge_concurrency must be > 0"),
        (["+reward.reward_kwargs.judge_api_key_env=RLPT_NO_SUCH_KEY"], "'RLPT_NO_SUCH_KEY', which is not set"),
        (["data.rlpt.msr_lambda=-1"], "data.rlpt.msr_lambda=-1: λ must be a number > 0"),
    ],
)
def test_doctor_catches_reward_side_mistakes(built, overrides, message):
    """Each mistake would otherwise fail at start-up on the GPU cluster (or, for typos, silently do nothing).
    In-process: the same composition and checks as `rlpt doctor RECIPE` (the CLI is run below)."""
    from rlpt_verl.tools.recipe_check import check_config, compose_recipe

    assert check_config(compose_recipe("rlpt_grpo_fsdp", rlpt_files(built))) == []
    problems = check_config(compose_recipe("rlpt_grpo_fsdp", rlpt_files(built) + overrides))
    assert any(message in p for p in problems), problems


def test_doctor_cli_reports_a_reward_mistake(built):
    p = doctor("rlpt_grpo_fsdp", *rlpt_files(built), "reward.reward_kwargs.judge_model=''")
    assert p.returncode == 1 and "judge_model is empty" in p.stderr and "1 problem(s)" in p.stdout


def test_doctor_catches_empty_and_mismatched_data(built, rpt_built, tmp_path):
    import pyarrow.parquet as pq

    empty = tmp_path / "train_asr.parquet"
    table = pq.read_table(os.path.join(built["dir"], "train_asr.parquet"))
    pq.write_table(table.slice(0, 0), empty)
    d = built["dir"]
    p = doctor("rlpt_grpo_fsdp", *rlpt_files(built)[1:], f"data.train_files=[{empty},{d}/train_msr.parquet]")
    assert p.returncode == 1 and f"training data file {empty} has 0 rows" in p.stderr
    # the RPT recipe pointed at RLPT data, and the RLPT recipe at RPT data
    r = rpt_built["dir"]
    p = doctor(
        "rpt_grpo_fsdp",
        f"data.train_files={d}/train_asr.parquet",
        f"data.val_files={d}/val_asr.parquet",
        "data.max_prompt_length=512",
    )
    assert p.returncode == 1 and "the rpt reward manager needs reward_model.token_byte_ends" in p.stderr
    p = doctor(
        "rlpt_grpo_fsdp",
        f"data.train_files=[{r}/train.parquet]",
        f"data.val_files=[{r}/val_easy.parquet]",
        "data.max_prompt_length=512",
    )
    assert p.returncode == 1 and "holds RPT rows" in p.stderr and "RLPTMixtureDataset needs rlpt_asr" in p.stderr
    p = doctor(
        "rpt_grpo_fsdp",
        f"data.train_files={r}/train.parquet",
        f"data.val_files={r}/val_easy.parquet",
        "+reward.reward_kwargs.rpt_require_think_ends=false",
        "data.max_prompt_length=512",
    )
    assert p.returncode == 1 and "unknown rpt reward setting(s) ['rpt_require_think_ends']" in p.stderr


def test_every_shipped_recipe_passes_doctor_with_its_data(built, rpt_built, tmp_path):
    """No problem on any shipped recipe pointed at matching data (math data for RLVR: a tiny real file)."""
    from rlpt_verl.tools.recipe_check import check_config, compose_recipe

    for name in (
        "rlpt_grpo_fsdp",
        "rlpt_grpo_megatron",
        "rlpt_grpo_fsdp_managed_judge",
        "rlpt_grpo_megatron_managed_judge",
    ):
        assert check_config(compose_recipe(name, rlpt_files(built))) == [], name
    r = rpt_built["dir"]
    rpt = [
        f"data.train_files={r}/train.parquet",
        f"data.val_files=[{r}/val_easy.parquet]",
        "data.max_prompt_length=512",
    ]
    assert check_config(compose_recipe("rpt_grpo_fsdp", rpt)) == []


@pytest.mark.parametrize(
    "recipe, overrides, message",
    [
        # 1. 512 x 8 rows across 6 data-parallel ranks: verl asserts at the first update
        (
            "rlpt_grpo_fsdp_managed_judge",
            ["trainer.n_gpus_per_node=6"],
            "do not divide across the data-parallel size 6",
        ),
        (
            "rlpt_grpo_fsdp",
            [
                "trainer.n_gpus_per_node=8",
                "actor_rollout_ref.rollout.n=3",
                "actor_rollout_ref.actor.ppo_mini_batch_size=100",
            ],
            "actor.ppo_mini_batch_size=100 x rollout.n=3 = 300 rows do not divide",
        ),
        (
            "rlpt_grpo_megatron",
            ["trainer.n_gpus_per_node=8", "actor_rollout_ref.actor.megatron.tensor_model_parallel_size=3"],
            "8 training GPUs do not divide into model-parallel groups of 3",
        ),
        # 3. a run that never saves or validates
        ("rlpt_grpo_fsdp", ["trainer.save_freq=-1"], "this run never saves a checkpoint"),
        ("rpt_grpo_fsdp", ["trainer.test_freq=-1"], "validation runs only before step 1"),
        # 6. λ exact only with one optimizer step per step and verl's default loss; 8. sum-norm needs a scale
        ("rlpt_grpo_fsdp", ["actor_rollout_ref.actor.ppo_mini_batch_size=128"], "splits each step into 4 optimizer"),
        ("rlpt_grpo_fsdp", ["actor_rollout_ref.actor.policy_loss.loss_mode=gspo"], "loss_mode=gspo"),
        (
            "rlpt_grpo_fsdp",
            ["data.rlpt.lambda_mode=weight", "actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-sum-norm"],
            "seq-mean-token-sum-norm is exact under the λ weights only with a fixed actor.loss_scale_factor",
        ),
        # 7. validation larger than TransferQueue's storage
        ("rlpt_grpo_fsdp", ["transfer_queue.backend.SimpleStorage.total_storage_size=100"], "more than TransferQueue"),
    ],
)
def test_doctor_catches_run_breaking_settings(built, rpt_built, recipe, overrides, message):
    from rlpt_verl.tools.recipe_check import check_config, compose_recipe

    if recipe == "rpt_grpo_fsdp":
        r = rpt_built["dir"]
        files = [
            f"data.train_files={r}/train.parquet",
            f"data.val_files=[{r}/val_easy.parquet]",
            "data.max_prompt_length=512",
        ]
    else:
        files = rlpt_files(built)
    problems = check_config(compose_recipe(recipe, files + overrides))
    assert any(message in p for p in problems), problems


def test_weight_mode_rejects_inexact_settings_before_any_rollout(built):
    """`python -m rlpt_verl.main_ppo` fails at start-up (no Ray, no rollout) instead of at step 1."""
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlpt_verl.main_ppo",
            "--config-path=pkg://rlpt_verl.recipes",
            "--config-name=rlpt_grpo_fsdp",
            *rlpt_files(built),
            "data.rlpt.lambda_mode=weight",
            "actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-sum-norm",
            "actor_rollout_ref.model.path=x",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode != 0
    assert "data.rlpt.lambda_mode=weight cannot make λ exact" in p.stderr and "loss_scale_factor" in p.stderr
    assert "ray.init" not in p.stderr.lower() and "Started a local Ray" not in p.stderr
