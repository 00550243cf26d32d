"""The `rpt` manager inside verl's RewardLoopManager on a local Ray cluster, on rows from `rlpt build-rpt`."""

import os

import pyarrow.parquet as pq

from rlpt_verl.reward.loop import make_batch, per_sample, reward_config
from rlpt_verl.reward.rpt_manager import EXTRA_KEYS


def cases(row):
    truth = row["reward_model"]
    cont, ends = truth["ground_truth"], truth["token_byte_ends"]
    first = cont.encode()[: ends[0]].decode("utf-8", "replace")
    two = cont.encode()[: ends[1]].decode("utf-8", "replace")
    out = {
        "one_token": (f"<think>Most likely next.</think> \\boxed{{{first}}}", 1.0),
        "two_tokens": (f"<think>Two tokens.</think> \\boxed{{{two}}}", 1.0),
        "no_think": (f"\\boxed{{{first}}}", 0.0),
        "wrong": ("<think>Guess.</think> \\boxed{ zebra}", 0.0),
        "no_box": (f"<think>Hmm.</think> {first}", 0.0),
    }
    if len(two) > len(first) + 1:
        out["mid_token"] = (f"<think>Cut.</think> \\boxed{{{two[:-1]}}}", 0.0)
    return out


def test_scores_through_verls_reward_loop(rpt_built, model_dir, ray_cluster):
    from verl.experimental.reward_loop.reward_loop import RewardLoopManager

    from rlpt_verl.tasks.prompt_meter import load_tokenizer

    rows = pq.read_table(os.path.join(rpt_built["dir"], "val_easy.parquet")).to_pylist()
    rows = [r for r in rows if "{" not in r["reward_model"]["ground_truth"][:8]][:4]
    batch_rows, responses, expected = [], [], []
    for row in rows:
        for kind, (text, score) in cases(row).items():
            batch_rows.append(row)
            responses.append(text)
            expected.append((kind, score))
    tok = load_tokenizer(model_dir)
    manager = RewardLoopManager(reward_config(model_dir, num_workers=2, manager="rpt"))
    results = per_sample(manager.compute_rm_score(make_batch(batch_rows, responses, tok)))

    assert len(results) == len(expected) >= 20
    for (kind, score), r in zip(expected, results, strict=True):
        assert set(r) == {"score", *EXTRA_KEYS}, kind
        assert r["score"] == r["acc"] == score, kind
        if kind == "one_token":
            assert r["tokens_matched"] == 1
        elif kind == "two_tokens":
            assert r["tokens_matched"] == 2
        elif kind == "no_think":
            assert r["format_error"] == 1 and r["no_think_end"] == 1
        elif kind == "no_box":
            assert r["format_error"] == 1 and r["no_boxed"] == 1
        elif kind == "mid_token":
            assert r["mid_token"] == 1
        elif kind == "wrong":
            assert r["mismatch"] == 1 and r["format_error"] == 0


def test_registered_by_entry_point_and_pkg_path(model_dir):
    from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls
    from verl.utils.import_utils import load_extern_object

    from rlpt_verl.reward.rpt_manager import RPTRewardManager

    assert get_reward_manager_cls("rpt") is RPTRewardManager
    assert load_extern_object("pkg://rlpt_verl.reward.rpt_manager", "RPTRewardManager") is RPTRewardManager


def test_rows_without_boundaries_fail_loudly(model_dir):
    import asyncio

    import pytest

    from rlpt_verl.reward.rpt_manager import RPTRewardManager
    from rlpt_verl.tasks.prompt_meter import load_tokenizer

    tok = load_tokenizer(model_dir)
    row = {
        "data_source": "rpt",
        "prompt": [{"role": "user", "content": "x"}],
        "reward_model": {"style": "rule", "ground_truth": " a"},
        "extra_info": {"index": 0},
    }
    manager = RPTRewardManager(reward_config(model_dir, manager="rpt"), tok)
    with pytest.raises(KeyError, match="rlpt build-rpt"):
        asyncio.run(manager.run_single(make_batch([row], ["<think>.</think>\\boxed{ a}"], tok)))
