"""`rlpt build-sft`: the compute-matched SFT control from a real `rlpt build`, loaded by verl's SFT dataset, and
its recipe composed by verl's sft_trainer."""

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq


def test_control_holds_every_rlpt_row_with_its_true_segment_and_verl_loads_it(built, tokenizer_dir, tmp_path):
    from omegaconf import OmegaConf
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    from rlpt_verl.tasks.prompt_meter import load_tokenizer

    out = tmp_path / "sft_control"
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlpt_verl.cli",
            "build-sft",
            built["dir"],
            "-o",
            str(out),
            "--tokenizer",
            tokenizer_dir,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    report = json.load(open(out / "sft_report.json"))
    for split in ("train", "val"):
        rl = [
            r
            for t in ("asr", "msr")
            for r in pq.read_table(os.path.join(built["dir"], f"{split}_{t}.parquet")).to_pylist()
        ]
        sft = pq.read_table(out / f"{split}.parquet").to_pylist()
        assert len(sft) == len(rl) == report["rows"][f"{split}_asr"] + report["rows"][f"{split}_msr"]
        for a, b in zip(rl, sft, strict=True):  # same order: ASR rows, then MSR rows
            assert b["messages"][0] == a["prompt"][0]  # the prompt the RL policy sees
            answer = b["messages"][-1]
            assert answer == {
                "role": "assistant",
                "content": f"<|startofprediction|>{a['extra_info']['target']}<|endofprediction|>",
            }
    assert report["tokens"]["train"] > report["answer_tokens"]["train"] > 0
    assert f"{report['tokens']['train']} training tokens" in p.stdout
    cfg = OmegaConf.create({"messages_key": "messages", "max_length": 3072, "truncation": "left", "pad_mode": "right"})
    ds = MultiTurnSFTDataset(str(out / "train.parquet"), load_tokenizer(tokenizer_dir), cfg)
    assert len(ds) == report["rows"]["train_asr"] + report["rows"]["train_msr"]
    item = ds[0]
    assert 0 < item["loss_mask"].sum() < item["input_ids"].shape[0]  # the loss is on the answer only


def test_control_recipe_composes_with_verls_sft_trainer():
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "verl.trainer.sft_trainer",
            "--config-path=pkg://rlpt_verl.recipes",
            "--config-name=sft_rlpt_control",
            "--cfg",
            "job",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    assert "experiment_name: sft_rlpt_control" in p.stdout and "train_batch_size: 512" in p.stdout


def test_build_sft_refuses_a_folder_without_rlpt_rows(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "rlpt_verl.cli", "build-sft", str(tmp_path), "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 2 and "has no train_asr.parquet or train_msr.parquet" in p.stderr
    assert "Traceback" not in p.stderr and not (tmp_path / "o").exists()
