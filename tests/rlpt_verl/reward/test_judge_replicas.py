"""Several judge URLs: the `rlpt` manager inside verl's reward loop routes each reference's group to one replica
(rendezvous order) and fails over to the other when one is killed. Two real `transformers serve` servers; the
judge prompt in its cache-friendly layout (the same instructions, the prediction last)."""

import os

import pyarrow.parquet as pq

from rlpt_verl.reward.judge_replicas import replica_order
from rlpt_verl.reward.loop import make_batch, per_sample, reward_config

from .test_rlpt_manager import CLOSE, OPEN, reward_loop


def judged_batch(rows, wording):
    """Three distinct predictions per row that need the judge (rewordings, no textual prefix)."""
    batch_rows, responses = [], []
    for row in rows:
        for k in range(3):
            batch_rows.append(row)
            responses.append(f"{OPEN}{wording} ({k + 1}): {row['extra_info']['target'].lower()}{CLOSE}")
    return batch_rows, responses


def test_groups_stay_on_one_replica_and_fail_over_when_one_is_killed(built, model_dir, judge_server, ray_cluster):
    from rlpt_verl.tasks.prompt_meter import load_tokenizer
    from rlpt_verl.tools.local_judge import LocalJudgeServer

    rows = [r for r in pq.read_table(os.path.join(built["dir"], "val_asr.parquet")).to_pylist()
            if len(r["extra_info"]["target"]) < 200][:6]  # fmt: skip
    tok = load_tokenizer(model_dir)
    second = LocalJudgeServer(model_dir).start()
    try:
        urls = [judge_server.url, second.url]
        settings = {
            "judge_base_url": ",".join(urls),
            "judge_model": judge_server.model,
            "judge_timeout_s": 120,
            "judge_max_retries": 1,
            "judge_retry_budget_s": 120,
            "judge_backoff_max_s": 1.0,
            "judge_prompt_layout": "cache_friendly",  # the layout a replica's prefix cache serves best
            **judge_server.verdict_settings,
        }
        config = reward_config(model_dir, settings, num_workers=2)
        before = [judge_server.request_count(), second.request_count()]
        batch_rows, responses = judged_batch(rows, "Put differently")
        with reward_loop(config) as manager:
            results = per_sample(manager.compute_rm_score(make_batch(batch_rows, responses, tok)))
        sent = [judge_server.request_count() - before[0], second.request_count() - before[1]]
        first = {r["reward_model"]["ground_truth"]: replica_order(r["reward_model"]["ground_truth"], urls)[0]
                 for r in rows}  # fmt: skip
        assert all(r["judge_called"] == 1 and r["judge_error"] == 0 for r in results)
        for row, r in zip(batch_rows, results, strict=True):  # each group on its reference's first replica
            assert r["judge_replica"] == first[row["reward_model"]["ground_truth"]]
        assert len(set(first.values())) == 2  # both replicas served groups
        assert sent == [sum(r["judge_requests"] for r in results if r["judge_replica"] == i) for i in (0, 1)]

        second.stop()  # one replica gone: its references go to the other one, nothing is left unjudged
        batch_rows, responses = judged_batch(rows, "Said otherwise")
        with reward_loop(config) as manager:
            results = per_sample(manager.compute_rm_score(make_batch(batch_rows, responses, tok)))
        assert all(r["judge_error"] == 0 and r["parse_failure"] == 0 for r in results), results
        assert {r["judge_replica"] for r in results} == {0.0}
        moved = [r for row, r in zip(batch_rows, results, strict=True) if first[row["reward_model"]["ground_truth"]]]
        assert moved and all(r["judge_requests"] >= 1 for r in moved)
    finally:
        second.stop()
