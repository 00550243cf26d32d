"""`rlpt sft-data` on real instruction data (champ-dataset's problems and solutions), loaded by verl's
MultiTurnSFTDataset; the cold-start SFT recipe composes with verl's sft_trainer config."""

import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from rlpt_verl.tasks.sft import to_messages
from rlpt_verl.tools import assets


@pytest.mark.parametrize(
    "record, fmt_or_reason",
    [
        ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}, "messages"),
        ({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}, "sharegpt"),
        ({"instruction": "Do it.", "input": "", "output": "Done."}, "alpaca"),
        ({"prompt": "p", "completion": "c"}, "prompt/completion"),
        ({"question": "q", "answer": "a"}, "question/answer"),
        ({"messages": [{"role": "user", "content": "q"}]}, "no_assistant_turn_last"),
        ({"messages": [{"role": "assistant", "content": "a"}]}, "no_user_turn"),
        ({"messages": [{"role": "wizard", "content": "q"}]}, "bad_role"),
        ({"question": "q", "answer": "  "}, "empty_content"),
        ({"question": "q", "answer": 3}, "content_not_string"),
        ({"text": "plain"}, "unknown_format"),
    ],
)
def test_to_messages(record, fmt_or_reason):
    messages, info = to_messages(record)
    assert info == fmt_or_reason
    assert (messages is None) == (
        fmt_or_reason not in {"messages", "sharegpt", "alpaca", "prompt/completion", "question/answer"}
    )


def test_converts_real_data_that_verl_loads(tmp_path, tokenizer_dir):
    from omegaconf import OmegaConf
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    from rlpt_verl.tasks.prompt_meter import load_tokenizer

    problems = assets.champ_problems()
    assert len(problems) == 270
    data = tmp_path / "data"
    data.mkdir()
    with open(data / "qa.jsonl", "w") as f:
        for p in problems[:120]:
            f.write(json.dumps({"question": p["problem"], "answer": p["solution"]}) + "\n")
        f.write("{broken\n")
        f.write(json.dumps({"question": "no answer"}) + "\n")
    with open(data / "chat.json", "w") as f:
        json.dump(
            [
                {
                    "messages": [
                        {"role": "user", "content": p["problem"]},
                        {"role": "assistant", "content": p["solution"]},
                    ]
                }
                for p in problems[120:]
            ],
            f,
        )
    out = tmp_path / "sft"
    p = subprocess.run(
        [sys.executable, "-m", "rlpt_verl.cli", "sft-data", str(data), "-o", str(out), "--val-fraction", "0.1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    report = json.load(open(out / "sft_report.json"))
    assert report["formats"] == {"messages": 150, "question/answer": 120}
    assert report["skipped"] == {"unknown_format": 1} and report["skipped_at_read"] == {"malformed_json": 1}
    assert report["rows"]["train"] + report["rows"]["val"] == 270 and 10 <= report["rows"]["val"] <= 50
    rows = pq.read_table(out / "train.parquet").to_pylist()
    assert rows[0]["messages"][0]["role"] == "user" and rows[0]["messages"][-1]["role"] == "assistant"
    cfg = OmegaConf.create({"messages_key": "messages", "max_length": 2048, "truncation": "right", "pad_mode": "right"})
    ds = MultiTurnSFTDataset(str(out / "train.parquet"), load_tokenizer(tokenizer_dir), cfg)
    assert len(ds) == report["rows"]["train"]
    item = ds[0]
    assert item["loss_mask"].sum() > 0 and item["input_ids"].shape == item["loss_mask"].shape
    # deterministic
    again = tmp_path / "again"
    subprocess.run(
        [sys.executable, "-m", "rlpt_verl.cli", "sft-data", str(data), "-o", str(again), "--val-fraction", "0.1"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert (again / "val.parquet").read_bytes() == (out / "val.parquet").read_bytes()


def test_sft_data_bad_input(tmp_path):
    (tmp_path / "x.jsonl").write_text(json.dumps({"text": "no instruction format"}) + "\n")
    p = subprocess.run(
        [sys.executable, "-m", "rlpt_verl.cli", "sft-data", str(tmp_path / "x.jsonl"), "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 2 and "no usable conversation" in p.stderr and "Traceback" not in p.stderr


def test_sft_recipe_composes_with_paper_values():
    from hydra import compose, initialize_config_module

    with initialize_config_module("rlpt_verl.recipes", version_base=None):
        cfg = compose("sft_cold_start")
    assert cfg.data.train_batch_size == 1024 and cfg.optim.lr == 2e-5 and cfg.optim.lr_scheduler_type == "cosine"
    assert cfg.trainer.total_epochs == 3 and cfg.data.messages_key == "messages"
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "verl.trainer.sft_trainer",
            "--config-path=pkg://rlpt_verl.recipes",
            "--config-name=sft_cold_start",
            "--cfg",
            "job",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-2000:]


def test_an_empty_validation_file_is_said(tmp_path):
    """50 conversations at the default 1 %: often nothing is held out; the summary then says so and what to do."""
    from rlpt_verl.tasks.sft import SFTDataConfig, run_sft_data

    src = tmp_path / "chat.jsonl"
    src.write_text("".join(json.dumps({"prompt": f"Count to {i}.", "response": f"1..{i}"}) + "\n" for i in range(50)))
    held = {
        seed: run_sft_data(SFTDataConfig(inputs=(str(src),), output=str(tmp_path / f"s{seed}"), seed=seed))["rows"][
            "val"
        ]
        for seed in range(6)
    }
    for seed in (min(held, key=held.get), max(held, key=held.get)):  # one that holds none out, one that holds some
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "rlpt_verl.cli",
                "sft-data",
                str(src),
                "-o",
                str(tmp_path / "o"),
                "--seed",
                str(seed),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert p.returncode == 0, p.stderr
        warned = "warning: val.parquet holds 0 rows" in p.stdout
        assert warned == (held[seed] == 0), (held, p.stdout)
    assert min(held.values()) == 0 < max(held.values())
    assert "raise --val-fraction (0.01 of 50 conversations held out none)" in subprocess.run(
        [sys.executable, "-m", "rlpt_verl.cli", "sft-data", str(src), "-o", str(tmp_path / "o"), "--seed",
         str(min(held, key=held.get))], capture_output=True, text=True, timeout=300,
    ).stdout  # fmt: skip
