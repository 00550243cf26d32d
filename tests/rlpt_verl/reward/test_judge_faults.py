"""Faults on a real judge server process: SIGSTOP/SIGCONT, kill/restart, wrong model, judge down, replies
that never parse, all with every core of the machine busy (the ``cpu_hog`` fixture).

Every sample gets a score, or the run stops with a clear error; never a hang (each case is bounded). The
manager runs inside verl's own RewardLoopWorker (in-process). Two faults a real ``transformers serve``
cannot be made to show (a 429 with ``Retry-After``; vLLM's context-length 400) use a named stub server.
"""

import asyncio
import os
import time

import pyarrow.parquet as pq
import pytest

from rlpt_verl.llm_client import LLMConfigError, LLMDownError
from rlpt_verl.reward.loop import make_batch, reward_config
from rlpt_verl.tools.local_judge import LocalJudgeServer

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
    """Predictions that always need the judge (long enough, not textual prefixes), unique per test."""
    from rlpt_verl.tasks.prompt_meter import load_tokenizer

    filler = "zebras quietly painted seven purple lanterns beneath a frozen orchard while distant drums".split()
    responses = []
    for i, row in enumerate(rows):  # as many words as the target: passes the coverage and length guards
        n = len(row["extra_info"]["target"].split())
        responses.append(f"{OPEN}{tag} {i} " + " ".join(filler[k % len(filler)] for k in range(n)) + f".{CLOSE}")
    return make_batch(rows, responses, load_tokenizer(model_dir))


def worker_for(model_dir, server, **kwargs):
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    settings = {"judge_base_url": server.url, "judge_model": server.model, **kwargs}
    return RewardLoopWorker(reward_config(model_dir, settings))


def test_sigstop_times_out_then_sigcont_recovers(server, rows, model_dir, cpu_hog):
    """A 10 s stall outlasts the first timeouts (1 s, doubling per consecutive timeout), so requests do time
    out; the breaker then lets one probe at a time through, with a growing timeout, until the server has
    worked through what it already had (it answers abandoned requests too), instead of a storm."""
    worker = worker_for(
        model_dir,
        server,
        judge_timeout_s=1,
        judge_max_retries=10,
        judge_backoff_base_s=0.2,
        judge_backoff_max_s=1.0,
        judge_retry_budget_s=300,
        judge_concurrency=2,
    )
    before = server.request_count()

    async def scenario():
        task = asyncio.create_task(worker.compute_score_batch(judged_batch(rows, model_dir, "stop")))
        await asyncio.sleep(0.2)
        server.pause()
        await asyncio.sleep(10)
        server.resume()
        return await asyncio.wait_for(task, 500)

    out = asyncio.run(scenario())
    infos = [o["reward_extra_info"] for o in out]
    assert all(o["reward_score"] in (0.0, 1.0) for o in out)
    assert sum(i["judge_error"] for i in infos) == 0
    sent = sum(i["judge_requests"] for i in infos)
    assert sent > len(rows)  # timeouts were retried
    assert sent <= 2 * len(rows) + 12  # ... without a retry storm (2 per sample when a reply is re-asked)
    assert server.request_count() - before <= sent  # the server logs only requests it answered


def test_kill_and_restart_retries_succeed(server, rows, model_dir, cpu_hog):
    worker = worker_for(
        model_dir,
        server,
        judge_timeout_s=10,
        judge_max_retries=40,
        judge_backoff_base_s=0.2,
        judge_backoff_max_s=2.0,
        judge_retry_budget_s=240,
        judge_concurrency=3,
    )
    server.stop()

    async def scenario():
        task = asyncio.create_task(worker.compute_score_batch(judged_batch(rows, model_dir, "restart")))
        await asyncio.sleep(2)
        await asyncio.get_running_loop().run_in_executor(None, server.start)
        return await asyncio.wait_for(task, 300)

    out = asyncio.run(scenario())
    infos = [o["reward_extra_info"] for o in out]
    assert sum(i["judge_error"] for i in infos) == 0
    assert sum(i["judge_requests"] for i in infos) > len(rows)  # probes failed against the dead server first


def test_wrong_model_name_fails_fast_and_clearly(server, rows, model_dir):
    worker = worker_for(model_dir, server, judge_model="no-such-judge-model")
    t0 = time.monotonic()
    with pytest.raises(LLMConfigError, match=r"rejected the request \(HTTP 4\d\d\).*no-such-judge-model"):
        asyncio.run(worker.compute_score_batch(judged_batch(rows, model_dir, "model")))
    assert time.monotonic() - t0 < 15


def test_judge_down_raises_naming_the_url(model_dir, rows, cpu_hog):
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
        LLMDownError, match=rf"judge at http://127\.0\.0\.1:{dead.port}/v1/chat/completions looks down.*connection"
    ):
        asyncio.run(worker.compute_score_batch(judged_batch(rows, model_dir, "down")))
    assert time.monotonic() - t0 < 30


def test_judge_killed_mid_step_raises_for_every_later_sample(model_dir, rows, cpu_hog):
    """verl 0.9.1 scores each sample with ``RewardLoopWorker.compute_score`` (agent_loop.py), many in flight.
    The judge answers some of the step's samples, then its process is killed: those answered keep their
    scores, a bounded few fail as judge errors while the down rule counts, and every later sample raises
    naming the judge's URL — what verl's agent loop logs and drops, and what the RLPT trainer's
    missing-samples check then stops the step on (test_trainer.py::test_missing_samples_stop_the_step...)."""
    judge = LocalJudgeServer(model_dir).start()
    try:
        worker = worker_for(
            model_dir,
            judge,
            judge_timeout_s=5,
            judge_max_retries=1,
            judge_backoff_base_s=0.05,
            judge_down_window=8,
            judge_down_min_calls=4,
            judge_concurrency=2,
        )
        singles = [judged_batch([r], model_dir, f"mid{i}") for i, r in enumerate(rows * 3)]
        before = judge.request_count()

        async def one(batch):
            try:
                return await worker.compute_score(batch)
            except LLMDownError as e:
                return e

        async def scenario():
            tasks = [asyncio.create_task(one(b)) for b in singles]
            deadline = time.monotonic() + 240
            while judge.request_count() - before < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            answered_before_kill = judge.request_count() - before
            judge.stop()
            return answered_before_kill, await asyncio.wait_for(asyncio.gather(*tasks), 300)

        answered, results = asyncio.run(scenario())
    finally:
        judge.stop()
    assert answered >= 3  # it died mid-step, not before it
    scored = [r for r in results if isinstance(r, dict)]
    raised = [r for r in results if isinstance(r, LLMDownError)]
    assert len(scored) + len(raised) == len(singles)
    assert raised, "a dead judge must stop the step, not be scored around"
    assert all(f"127.0.0.1:{judge.port}/v1/chat/completions looks down" in str(e) for e in raised)
    good = [r for r in scored if not r["reward_extra_info"]["judge_error"]]
    assert len(good) >= 1 and all(r["reward_score"] in (0.0, 1.0) for r in good)
    assert len(scored) - len(good) <= 8  # judge errors before the down rule fired: bounded by its window


def test_replies_that_never_parse_stop_the_run(server, rows, model_dir):
    """A real judge that cannot say "Score: 0/1" (here: cut to one token) is a broken judge, not all-zero rewards."""
    worker = worker_for(model_dir, server, judge_max_tokens=1, judge_down_window=4, judge_down_min_calls=4)
    batch = judged_batch(rows * 2, model_dir, "unparsable")
    with pytest.raises(LLMDownError, match=r"looks down: \d+ of the last 4 calls failed \(unparsable \d+\)"):
        asyncio.run(worker.compute_score_batch(batch))


# -- stub servers: faults a real `transformers serve` cannot show ------------------------------------------
class StubJudge:
    """A stub OpenAI-compatible server on 127.0.0.1 (not a model): answers from a script of responses."""

    def __init__(self, script):
        self.script = list(script)  # (status, body, headers) per request; the last one repeats
        self.times: list[float] = []

    async def handle(self, request):
        from aiohttp import web

        await request.read()
        self.times.append(time.monotonic())
        status, body, headers = self.script[min(len(self.times), len(self.script)) - 1]
        return web.Response(status=status, text=body, headers=headers, content_type="application/json")

    async def __aenter__(self):
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/v1"
        return self

    async def __aexit__(self, *exc):
        await self.runner.cleanup()


OK = (200, '{"choices": [{"message": {"role": "assistant", "content": "Score: 1"}}]}', {})


def test_retry_after_is_honoured(rows, model_dir):
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    async def scenario():
        async with StubJudge([(429, '{"error": "busy"}', {"Retry-After": "2"}), OK]) as stub:
            kwargs = {"judge_base_url": stub.url, "judge_model": "m", "judge_backoff_base_s": 0.01}
            cfg = reward_config(model_dir, kwargs)
            out = await RewardLoopWorker(cfg).compute_score_batch(judged_batch(rows[:1], model_dir, "429"))
            return out, stub.times

    out, times = asyncio.run(scenario())
    assert out[0]["reward_score"] == 1.0 and out[0]["reward_extra_info"]["judge_requests"] == 2
    assert times[1] - times[0] >= 1.95  # waited as told, not the 0.01 s backoff


def test_context_length_400_is_reported_as_such(rows, model_dir):
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    vllm_400 = (
        400,
        '{"object": "error", "message": "This model\'s maximum context length is 2048 tokens. However, you '
        'requested 3100 tokens (3092 in the messages, 8 in the completion).", "type": "BadRequestError"}',
        {},
    )

    async def scenario():
        async with StubJudge([vllm_400]) as stub:
            cfg = reward_config(model_dir, {"judge_base_url": stub.url, "judge_model": "m"})
            return await RewardLoopWorker(cfg).compute_score_batch(judged_batch(rows[:2], model_dir, "ctx"))

    out = asyncio.run(scenario())  # no LLMConfigError ("check the model, key and URL"): a per-sample failure
    for o in out:
        info = o["reward_extra_info"]
        assert o["reward_score"] == 0.0 and info["context_overflow"] == 1 and info["judge_error"] == 1
        assert info["judge_requests"] == 1  # not retried: the same prompt would overflow again
