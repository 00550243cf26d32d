"""Faults on a real judge server process: SIGSTOP/SIGCONT, kill/restart, wrong model, judge down.

Every sample gets a score, or the run stops with a clear error; never a hang (each case is bounded).
The manager runs inside verl's own RewardLoopWorker (in-process).
"""

import asyncio
import os
import time

import pyarrow.parquet as pq
import pytest

from rlpt_verl.local_judge import LocalJudgeServer
from rlpt_verl.reward.judge_client import JudgeConfigError, JudgeDownError
from rlpt_verl.reward.loop import make_batch, reward_config

OPEN, CLOSE = "<|startofprediction|>", "<|endofprediction|>"


@pytest.fixture(scope="module")
def server(model_dir):
    s = LocalJudgeServer(model_dir).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def rows(built):
    rows = pq.read_table(os.path.join(built["dir"], "val_msr.parquet")).to_pylist()
    return [r for r in rows if len(r["extra_info"]["target"]) < 160][:6]


def judged_batch(rows, model_dir, tag):
    """Predictions that always need the judge, unique per test so no cache serves them."""
    from rlpt_verl.prompt_meter import load_tokenizer

    responses = [f"{OPEN}{tag} case {i}: something else entirely.{CLOSE}" for i in range(len(rows))]
    return make_batch(rows, responses, load_tokenizer(model_dir))


def worker_for(model_dir, server, **kwargs):
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    settings = {"judge_base_url": server.url, "judge_model": server.model, **kwargs}
    return RewardLoopWorker(reward_config(model_dir, settings))


def test_sigstop_times_out_then_sigcont_recovers(server, rows, model_dir):
    worker = worker_for(
        model_dir,
        server,
        judge_timeout_s=2,
        judge_max_retries=10,
        judge_backoff_base_s=0.2,
        judge_backoff_max_s=1.0,
        judge_retry_budget_s=90,
        judge_concurrency=2,
    )

    async def scenario():
        task = asyncio.create_task(worker.compute_score_batch(judged_batch(rows, model_dir, "stop")))
        await asyncio.sleep(0.2)
        server.pause()
        await asyncio.sleep(5)
        server.resume()
        return await asyncio.wait_for(task, 180)

    out = asyncio.run(scenario())
    infos = [o["reward_extra_info"] for o in out]
    assert all(o["reward_score"] in (0.0, 1.0) for o in out)
    assert sum(i["judge_error"] for i in infos) == 0
    assert sum(i["judge_requests"] for i in infos) > len(rows)  # timeouts were retried


def test_kill_and_restart_retries_succeed(server, rows, model_dir):
    worker = worker_for(
        model_dir,
        server,
        judge_timeout_s=10,
        judge_max_retries=40,
        judge_backoff_base_s=0.2,
        judge_backoff_max_s=2.0,
        judge_retry_budget_s=150,
        judge_concurrency=3,
    )
    server.stop()

    async def scenario():
        task = asyncio.create_task(worker.compute_score_batch(judged_batch(rows, model_dir, "restart")))
        await asyncio.sleep(2)
        await asyncio.get_running_loop().run_in_executor(None, server.start)
        return await asyncio.wait_for(task, 240)

    out = asyncio.run(scenario())
    infos = [o["reward_extra_info"] for o in out]
    assert sum(i["judge_error"] for i in infos) == 0
    assert all(i["judge_requests"] >= 2 for i in infos)  # each failed against the dead server first


def test_wrong_model_name_fails_fast_and_clearly(server, rows, model_dir):
    worker = worker_for(model_dir, server, judge_model="no-such-judge-model")
    t0 = time.monotonic()
    with pytest.raises(JudgeConfigError, match=r"rejected the request \(HTTP 4\d\d\).*no-such-judge-model"):
        asyncio.run(worker.compute_score_batch(judged_batch(rows, model_dir, "model")))
    assert time.monotonic() - t0 < 15


def test_judge_down_raises_naming_the_url(model_dir, rows):
    dead = LocalJudgeServer(model_dir)  # never started: nothing listens on its port
    worker = worker_for(
        model_dir,
        dead,
        judge_timeout_s=2,
        judge_max_retries=1,
        judge_backoff_base_s=0.05,
        judge_down_window=8,
        judge_down_min_calls=4,
    )
    t0 = time.monotonic()
    with pytest.raises(
        JudgeDownError, match=rf"judge at http://127\.0\.0\.1:{dead.port}/v1/chat/completions looks down"
    ):
        asyncio.run(worker.compute_score_batch(judged_batch(rows, model_dir, "down")))
    assert time.monotonic() - t0 < 30
