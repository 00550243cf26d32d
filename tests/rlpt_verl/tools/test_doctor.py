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
    p = doctor("rlpt_grpo_fsdp", *rlpt_files(built))
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


def test_doctor_recipe_bad_name_or_override(tmp_path):
    p = doctor("no_such_recipe")
    assert p.returncode == 2 and "cannot compose recipe 'no_such_recipe'" in p.stderr
    assert "shipped: rlpt_grpo_fsdp, " in p.stderr and "sft_cold_start" in p.stderr
    p = doctor("rlpt_grpo_fsd")
    assert p.returncode == 2 and "did you mean rlpt_grpo_fsdp" in p.stderr
    bad = tmp_path / "mine.yaml"
    bad.write_text("defaults:\n  - rlpt_grpo_fsdp\ndata: {train_files: [a, b}\n")
    p = doctor(str(bad))
    assert p.returncode == 2 and "YAML syntax error at line 3" in p.stderr and "Traceback" not in p.stderr, p.stderr
    p = doctor("rlpt_grpo_fsdp", "data.no_such_key=1")
    assert p.returncode == 2 and "cannot compose recipe" in p.stderr and "Traceback" not in p.stderr


def test_doctor_rpt_recipe_checks_the_rpt_build(rpt_built):
    from ...conftest import RPT_BUDGET

    d = rpt_built["dir"]
    files = [f"data.train_files={d}/train.parquet", f"data.val_files=[{d}/val_easy.parquet,{d}/val_hard.parquet]"]
    files.append(f"actor_rollout_ref.model.path={rpt_built['dir']}")  # any existing folder
    p = doctor("rpt_grpo_fsdp", *files, f"data.max_prompt_length={RPT_BUDGET}")
    assert p.returncode == 0, p.stderr
    assert "rpt_grpo_fsdp: no problems found" in p.stdout
    p = doctor("rpt_grpo_fsdp", *files, "data.max_prompt_length=64")
    assert p.returncode == 1
    assert f"set data.max_prompt_length={RPT_BUDGET}" in p.stderr and "rpt_report.json" in p.stderr


def test_doctor_lambda_weight_mode(built):
    files = [*rlpt_files(built), "data.rlpt.lambda_mode=weight"]
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
        f"actor_rollout_ref.model.path={built['cfg'].tokenizer}",  # a real local folder
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
        f"actor_rollout_ref.model.path={r}",
    ]
    assert check_config(compose_recipe("rpt_grpo_fsdp", rpt)) == []


def test_the_span_recipe_passes_doctor_with_span_data_and_not_with_rlpt_data(built, tmp_path):
    """span_grpo_fsdp on `rlpt build-span` rows: no problem; on RLPT rows, or RLPT's recipe on span rows: named."""
    from rlpt_verl.tasks.span import SpanBuildConfig, run_build_span
    from rlpt_verl.tools.recipe_check import check_config, compose_recipe

    span = str(tmp_path / "span")
    run_build_span(
        SpanBuildConfig(rlpt_data=built["dir"], output=span, tokenizer=built["cfg"].tokenizer, max_prompt_tokens=600),
        quiet=True,
    )
    model = f"actor_rollout_ref.model.path={built['cfg'].tokenizer}"
    files = [f"data.train_files={span}/train_span.parquet", f"data.val_files={span}/val_span.parquet"]
    assert check_config(compose_recipe("span_grpo_fsdp", [*files, "data.max_prompt_length=600", model])) == []
    d = built["dir"]
    wrong = [f"data.train_files={d}/train_msr.parquet", f"data.val_files={d}/val_msr.parquet", model]
    problems = check_config(compose_recipe("span_grpo_fsdp", wrong))
    assert any("the span reward manager scores masked-span rows of `rlpt build-span`" in p for p in problems)
    problems = check_config(
        compose_recipe("rlpt_grpo_fsdp", [*rlpt_files(built), f"data.val_files=[{span}/val_span.parquet]"])
    )
    assert any("holds masked-span rows (rlpt_span) but the reward manager is rlpt" in p for p in problems)
    problems = check_config(compose_recipe("span_grpo_fsdp", [*files, model, "+reward.reward_kwargs.judge_model=m"]))
    assert any("the span reward manager takes only the length budget" in p for p in problems)
    # the reasoning-length budget passes doctor on the span and RLPT recipes; a half-set one is named
    budget = [
        "+reward.reward_kwargs.length_budget_start=4096",
        "+reward.reward_kwargs.length_budget_end=1024",
        "+reward.reward_kwargs.length_budget_decay_steps=500",
    ]
    assert check_config(compose_recipe("span_grpo_fsdp", [*files, "data.max_prompt_length=600", model, *budget])) == []
    assert check_config(compose_recipe("rlpt_grpo_fsdp", [*rlpt_files(built), *budget])) == []
    problems = check_config(compose_recipe("rlpt_grpo_fsdp", [*rlpt_files(built), budget[0]]))
    assert any("the length budget needs all of" in p for p in problems)


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


def test_doctor_catches_data_and_models_the_recipe_cannot_use(built, pydoc_jsonl, tmp_path):
    """Each passed as "no problems found" before, and would have failed or mistrained on the cluster."""
    import json

    from rlpt_verl.tasks.math import MathDataConfig, run_math_data
    from rlpt_verl.tools import assets
    from rlpt_verl.tools.recipe_check import check_config, compose_recipe

    d = built["dir"]

    def problems(recipe, *overrides):
        return check_config(compose_recipe(recipe, [*rlpt_files(built), *overrides]))

    def has(got, text):
        return any(text in p for p in got)

    got = problems("rlpt_grpo_fsdp", f"data.train_files=[{pydoc_jsonl}]")  # the raw corpus itself
    assert has(got, f"data file {pydoc_jsonl} has no 'prompt' column") and has(got, "looks like a raw corpus"), got
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps({"problem": p["problem"], "answer": p["answer"]}) + "\n"
                          for p in assets.champ_problems()[:8]))  # fmt: skip
    run_math_data(MathDataConfig(inputs=(str(qa),), output=str(tmp_path / "math"), val_fraction=0))
    math_train = f"{tmp_path}/math/train.parquet"
    got = problems("rlpt_grpo_fsdp", f"data.train_files=[{math_train}]")  # RLVR rows under the rlpt judge
    assert has(got, "rows the rlpt judge cannot score") and has(got, "rlvr_grpo_fsdp"), got
    got = problems("rlpt_grpo_fsdp", "data.custom_cls.path=null")  # verl then serves all ASR rows first
    assert has(got, "without the mixture dataset") and has(got, "data.custom_cls.name=RLPTMixtureDataset"), got
    got = problems("rlpt_grpo_fsdp", f"actor_rollout_ref.model.path={tmp_path}/models/none")
    assert has(got, f"actor_rollout_ref.model.path={tmp_path}/models/none is not a folder here"), got
    assert not has(problems("rlpt_grpo_fsdp", "actor_rollout_ref.model.path=Qwen/Qwen3-4B-Base"), "model.path")
    rlvr = [f"data.train_files={math_train}", f"data.val_files={math_train}", "trainer.val_before_train=false"]
    rlvr += ["trainer.test_freq=-1"]
    got = check_config(compose_recipe("rlvr_grpo_fsdp", rlvr))  # its default: checkpoints/rlpt/hf, not built yet
    assert has(got, "actor_rollout_ref.model.path=checkpoints/rlpt/hf is not a folder here"), got
    assert not has(got, "repeats training files")  # validation off: the documented way to run without val data
    got = problems("rlpt_grpo_fsdp", f"data.val_files=[{d}/train_asr.parquet]")
    assert has(got, f"data.val_files repeats training files ({d}/train_asr.parquet)"), got


def test_doctor_checks_the_sft_recipe_instead_of_a_traceback(tmp_path, tokenizer_dir):
    import json

    from rlpt_verl.tasks.sft import SFTDataConfig, run_sft_data
    from rlpt_verl.tools.recipe_check import check_config, compose_recipe

    p = doctor("sft_cold_start", RLPT_SFT_DATA=str(tmp_path / "none"))
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert f"data file not found: {tmp_path}/none/train.parquet" in p.stderr and "model.path=" in p.stderr
    src = tmp_path / "chat.jsonl"
    src.write_text("".join(json.dumps({"prompt": f"Say {i}.", "response": f"{i}."}) + "\n" for i in range(40)))
    run_sft_data(SFTDataConfig(inputs=(str(src),), output=str(tmp_path / "sft"), val_fraction=0.2))
    ok = [f"data.train_files={tmp_path}/sft/train.parquet", f"data.val_files={tmp_path}/sft/val.parquet"]
    assert check_config(compose_recipe("sft_cold_start", [*ok, f"model.path={tokenizer_dir}"])) == []
    got = check_config(compose_recipe("sft_cold_start", [f"data.train_files={built_like(tmp_path)}",
                                                         f"model.path={tokenizer_dir}", ok[1]]))  # fmt: skip
    assert any("has no 'messages' column" in p for p in got), got


def built_like(tmp_path):
    """A parquet with RL rows (a prompt column, no messages): what `rlpt build` writes, given to SFT by mistake."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "rl.parquet"
    pq.write_table(pa.table({"prompt": [[{"role": "user", "content": "x"}]], "data_source": ["rlpt_asr"]}), path)
    return path


def test_doctor_cli_names_each_data_and_model_problem(built, pydoc_jsonl, tmp_path):
    """The same checks as a user types them: one command, every problem on its own line, exit 1."""
    d = built["dir"]
    p = doctor(
        "rlpt_grpo_fsdp",
        *rlpt_files(built)[2:3],
        f"data.train_files=[{pydoc_jsonl},{d}/train_asr.parquet,{d}/train_msr.parquet]",
        f"data.val_files=[{d}/train_asr.parquet]",
        "data.custom_cls.path=null",
        f"actor_rollout_ref.model.path={tmp_path}/no/model",
    )
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    for text in (
        f"data file {pydoc_jsonl} has no 'prompt' column",
        "without the mixture dataset",
        f"actor_rollout_ref.model.path={tmp_path}/no/model is not a folder here",
        f"data.val_files repeats training files ({d}/train_asr.parquet)",
    ):
        assert text in p.stderr, (text, p.stderr)
