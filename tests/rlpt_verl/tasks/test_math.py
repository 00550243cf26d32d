"""`rlpt math-data` on champ-dataset's real problems; rows load with verl's RLHFDataset and are scored by
verl's built-in math verifier; the RLVR recipe composes and passes verl's validation."""

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq

from rlpt_verl.tasks.math import to_question_answer
from rlpt_verl.tools import assets


def test_question_answer_fields():
    assert to_question_answer({"problem": "1+1?", "answer": 2}) == (("1+1?", "2"), None)
    assert to_question_answer({"question": "q", "solution": "so \\boxed{7}."}) == (("q", "7"), None)
    assert to_question_answer({"text": "x"}) == (None, "unknown_format")
    assert to_question_answer({"problem": "q", "answer": ""}) == (None, "empty")
    assert to_question_answer({"problem": ["q"], "answer": "1"}) == (None, "not_a_string")


def test_converts_champ_and_verl_scores_it(tmp_path, tokenizer_dir):
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset
    from verl.utils.reward_score import default_compute_score

    from rlpt_verl.tasks.prompt_meter import load_tokenizer

    data = tmp_path / "data"
    data.mkdir()
    with open(data / "champ.jsonl", "w") as f:
        for p in assets.champ_problems():
            f.write(json.dumps({"problem": p["problem"], "answer": p["answer"]}) + "\n")
        f.write(json.dumps({"problem": "no answer field"}) + "\n")
    out = tmp_path / "math"
    p = subprocess.run(
        [sys.executable, "-m", "rlpt_verl.cli", "math-data", str(data), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    report = json.load(open(out / "math_report.json"))
    assert report["rows"]["train"] + report["rows"]["val"] == 270 and report["skipped"] == {"unknown_format": 1}
    rows = pq.read_table(out / "train.parquet").to_pylist()
    ds = RLHFDataset(
        str(out / "train.parquet"),
        load_tokenizer(tokenizer_dir),
        OmegaConf.create({"max_prompt_length": 1024, "filter_overlong_prompts": True}),
    )
    assert len(ds) == len(rows)
    for row in rows[:20]:
        truth = row["reward_model"]["ground_truth"]
        right = f"Reasoning... so the answer is $\\boxed{{{truth}}}$."
        assert default_compute_score(row["data_source"], right, truth) == 1.0
        assert default_compute_score(row["data_source"], "I give up, \\boxed{no idea}", truth) == 0.0


def test_rlvr_recipe_has_the_rlpt_hyperparameters(tokenizer_dir):
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    with initialize_config_module("rlpt_verl.recipes", version_base=None):
        rlvr = compose("rlvr_grpo_fsdp", overrides=[f"actor_rollout_ref.model.path={tokenizer_dir}"])
        rlpt = compose("rlpt_grpo_fsdp", overrides=[f"actor_rollout_ref.model.path={tokenizer_dir}"])
    OmegaConf.resolve(rlvr)
    OmegaConf.resolve(rlpt)
    validate_config(rlvr, use_reference_policy=need_reference_policy(rlvr), use_critic=need_critic(rlvr))
    for path in (
        "data.train_batch_size",
        "data.max_response_length",
        "actor_rollout_ref.actor.optim.lr",
        "actor_rollout_ref.actor.ppo_mini_batch_size",
        "actor_rollout_ref.actor.ppo_epochs",
        "actor_rollout_ref.actor.use_kl_loss",
        "actor_rollout_ref.actor.entropy_coeff",
        "actor_rollout_ref.rollout.n",
        "actor_rollout_ref.rollout.temperature",
        "algorithm.adv_estimator",
        "algorithm.use_kl_in_reward",
        "actor_rollout_ref.actor.optim.lr_scheduler_type",
    ):
        assert OmegaConf.select(rlvr, path) == OmegaConf.select(rlpt, path), path
    assert rlvr.reward.reward_manager.name == "naive" and rlvr.reward.custom_reward_function.path is None


# GSM8K-shaped records (written for this test; no third-party text): "#### N" answers, worked solutions.
GSM8K_STYLE = [
    {"question": "A box holds 12 pens. How many pens are in 6 boxes?", "answer": "6 * 12 = 72 pens.\n#### 72"},
    {"question": "A school buys 25 desks at 40 dollars. What is the bill?", "answer": "25 * 40 = 1000\n#### 1,000"},
    {"problem": "What is 7 squared?", "solution": "Seven times seven is 49."},
    {"problem": "Why is the sky blue?", "solution": "Because shorter wavelengths scatter more, as shown above."},
]


def math_data(*args):
    return subprocess.run(
        [sys.executable, "-m", "rlpt_verl.cli", "math-data", *args], capture_output=True, text=True, timeout=300
    )


def test_gsm8k_and_solution_answers_are_extracted_and_verl_scores_them(tmp_path):
    from verl.utils.reward_score import default_compute_score

    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in GSM8K_STYLE))
    out = tmp_path / "math"
    p = math_data(str(tmp_path / "qa.jsonl"), "-o", str(out), "--val-fraction", "0")
    assert p.returncode == 0, p.stderr
    report = json.load(open(out / "math_report.json"))
    assert report["skipped"] == {"answer_not_extractable": 1} and report["rows"] == {"train": 3, "val": 0}
    rows = pq.read_table(out / "train.parquet").to_pylist()
    assert [r["reward_model"]["ground_truth"] for r in rows] == ["72", "1000", "49"]
    for row in rows:  # a correct boxed answer earns 1 with verl's own verifier (the whole "#### 72" text would not)
        truth = row["reward_model"]["ground_truth"]
        assert default_compute_score(row["data_source"], f"So the answer is $\\boxed{{{truth}}}$.", truth) == 1.0
    assert default_compute_score(rows[0]["data_source"], "\\boxed{72}", GSM8K_STYLE[0]["answer"]) == 0.0


def test_nothing_held_out_writes_no_val_file_and_doctor_says_what_to_do(tmp_path, tokenizer_dir):
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in GSM8K_STYLE))
    out = tmp_path / "math"
    assert math_data(str(tmp_path / "qa.jsonl"), "-o", str(out), "--val-fraction", "0.9").returncode == 0
    assert (out / "val.parquet").exists()
    p = math_data(str(tmp_path / "qa.jsonl"), "-o", str(out), "--val-fraction", "0")
    assert p.returncode == 0 and "no val.parquet" in p.stdout
    assert sorted(os.listdir(out)) == ["math_report.json", "train.parquet"]  # the earlier val.parquet is gone
    d = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlpt_verl.cli",
            "doctor",
            "rlvr_grpo_fsdp",
            f"actor_rollout_ref.model.path={tokenizer_dir}",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "RLPT_MATH_DATA": str(out)},
        timeout=600,
    )
    assert d.returncode == 1
    assert f"{out}/val.parquet does not exist: the data was converted with --val-fraction 0" in d.stderr
    assert "data files not found" not in d.stderr


def test_final_answer_keeps_the_boxes_of_one_answer_together():
    from rlpt_verl.tasks.math import final_answer

    assert final_answer("The roots are \\(\\boxed{1}\\) and \\(\\boxed{-2}\\).", solution=True) == "1, -2"
    assert final_answer("\\boxed{1}\\boxed{2}", solution=True) == "1, 2"
    assert final_answer("We try \\boxed{4}; that fails, so the answer is \\boxed{3}.", solution=True) == "3"


def test_a_question_field_the_records_lack_is_named(tmp_path):
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in GSM8K_STYLE[:2]))
    p = math_data(str(tmp_path / "qa.jsonl"), "-o", str(tmp_path / "o"), "--question-field", "prompt_text")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "--question-field 'prompt_text' is not a field of these records (they have question, answer)" in p.stderr
