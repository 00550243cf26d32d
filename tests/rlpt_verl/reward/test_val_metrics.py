"""Our reward_extra_info through verl's own validation-metric code: per-task val-core accuracy."""

import asyncio
import os

import pyarrow.parquet as pq

OPEN, CLOSE = "<|startofprediction|>", "<|endofprediction|>"


def test_acc_becomes_val_core_per_task(built, tokenizer_dir):
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    from rlpt_verl.reward.loop import reward_config
    from rlpt_verl.reward.rlpt_manager import RLPTRewardManager
    from rlpt_verl.tasks.prompt_meter import load_tokenizer

    # judge-free cases only (textual prefixes and format failures), so no server is needed
    cfg = reward_config(tokenizer_dir, {"judge_base_url": "http://127.0.0.1:9/v1", "judge_model": "m"})
    manager = RLPTRewardManager(cfg, load_tokenizer(tokenizer_dir))
    sources, uids, infos = [], [], {"reward": []}
    expected = {}
    for task, right in (("asr", 3), ("msr", 1)):
        rows = pq.read_table(os.path.join(built["dir"], f"val_{task}.parquet")).to_pylist()[:2]
        for p, row in enumerate(rows):
            for k in range(4):  # 4 samples per prompt: `right` of them predict the target, the rest no tags
                response = f"{OPEN}{row['extra_info']['target']}{CLOSE}" if k < right else "I do not know."
                score, info = asyncio.run(manager.score(response, row["reward_model"]["ground_truth"]))
                sources.append(row["data_source"])
                uids.append(f"{task}-{p}")
                infos["reward"].append(score)
                for key, value in info.items():
                    infos.setdefault(key, []).append(value)
        expected[task] = right / 4
    metrics = PPOTrainer._val_metrics_update(None, sources, uids, infos, [])
    assert metrics["val-core/rlpt_asr/acc/mean@4"] == expected["asr"] == 0.75
    assert metrics["val-core/rlpt_msr/acc/mean@4"] == expected["msr"] == 0.25
    assert metrics["val-aux/rlpt_asr/format_error/mean@4"] == 0.25
    assert metrics["val-aux/rlpt_msr/shortcut/mean@4"] == 0.25
