"""Faults on a real judge server process: SIGSTOP/SIGCONT, kill/restart, wrong model, judge down, replies
that never parse, all with every core of the machine busy (the ``cpu_hog`` fixture).

Every sample gets a verdict, or raises (verl then drops it as missing: never a 0 that no judge gave), or the
run stops with a clear error; never a hang (each case is bounded). The manager runs inside verl's own
RewardLoopWorker (in-process); the SmolLM2 judge is constrained to a one-token 0/1 (``verdict_settings``) except where
a test needs replies that never parse. Two faults a real ``transformers serve``
cannot be made to show (a 429 with ``Retry-After``; vLLM's context-length 400) use a named stub server.
"""

import asyncio
import os
import re
import time

import pyarrow.parquet as pq
import pytest

from rlpt_verl.llm_client import LLMConfigError, LLMDownError, LLMFormatError
from rlpt_verl.reward.loop import make_batch, reward_config
from rlpt_verl.reward.rlpt_manager import UnjudgedSampleError
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

    settings = {"judge_base_url": server.url, "judge_model": server.model, **server.verdict_settings, **kwargs}
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
    """Nothing listens: the first samples raise as unjudged (missing, never 0), then the down rule stops the
    run naming the URL and the failure kind."""
    dead = LocalJudgeServer(model_dir)  # never started: nothing listens on its port
    worker = worker_for(
        model_dir,
        dead,
        judge_timeout_s=2,
        judge_max_retries=1,
        judge_backoff_base_s=0.05,
        judge_backoff_max_s=0.5,
        judge_retry_budget_s=5,
        judge_down_window=8,
        judge_down_min_calls=4,
    )
    singles = [judged_batch([r], model_dir, f"down{i}") for i, r in enumerate(rows)]

    async def scenario():
        return await asyncio.gather(*(worker.compute_score(b) for b in singles), return_exceptions=True)

    t0 = time.monotonic()
    out = asyncio.run(scenario())
    assert time.monotonic() - t0 < 60
    assert not [o for o in out if isinstance(o, dict)]  # no sample was scored
    assert all(isinstance(o, UnjudgedSampleError | LLMDownError) for o in out)
    down = [o for o in out if isinstance(o, LLMDownError)]
    assert down and all(
        re.search(rf"judge at http://127\.0\.0\.1:{dead.port}/v1/chat/completions looks down.*connection", str(o))
        for o in down
    )


def test_judge_killed_mid_step_raises_for_every_later_sample(model_dir, rows, cpu_hog):
    """verl 0.9.1 scores each sample with ``RewardLoopWorker.compute_score`` (agent_loop.py), many in flight.
    The judge answers some of the step's samples, then its process is killed: those answered keep their
    verdicts, a bounded few raise as unjudged while the down rule counts, and every later sample raises
    naming the judge's URL — what verl's agent loop logs and drops, and what the RLPT trainer's
    missing-samples check then stops the step on (test_trainer.py::test_missing_samples_stop_the_step...).
    No sample is scored 0 for the judge's death."""
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
        done: list[dict] = []

        async def one(batch):
            try:
                out = await worker.compute_score(batch)
            except (LLMDownError, UnjudgedSampleError) as e:
                return e
            done.append(out)
            return out

        async def scenario():
            tasks = [asyncio.create_task(one(b)) for b in singles]
            deadline = time.monotonic() + 240  # wait for what the test needs (3 verdicts), however busy the cores
            while len(done) < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            answered_before_kill = len(done)
            judge.stop()
            return answered_before_kill, await asyncio.wait_for(asyncio.gather(*tasks), 300)

        answered, results = asyncio.run(scenario())
    finally:
        judge.stop()
    assert answered >= 3  # it died mid-step, not before it
    scored = [r for r in results if isinstance(r, dict)]
    raised = [r for r in results if isinstance(r, LLMDownError)]
    unjudged = [r for r in results if isinstance(r, UnjudgedSampleError)]
    assert len(scored) + len(raised) + len(unjudged) == len(singles)
    assert raised, "a dead judge must stop the step, not be scored around"
    assert all(f"127.0.0.1:{judge.port}/v1/chat/completions looks down" in str(e) for e in raised)
    assert len(scored) >= 3 and all(r["reward_score"] in (0.0, 1.0) for r in scored)
    assert all(not r["reward_extra_info"]["judge_error"] for r in scored)  # nothing scored without a verdict
    assert len(unjudged) <= 8  # unjudged before the down rule fired: bounded by its window
    assert all("gave no verdict" in str(e) and "not scored 0" in str(e) for e in unjudged)


def test_replies_that_never_parse_are_missing_then_stop_the_run(server, rows, model_dir):
    """A real judge that cannot say "Score: 0/1" (here: cut to one token, unconstrained) gives no verdict: each
    such sample raises (missing, not 0), and once they pass their own limit the run stops naming the judge."""
    worker = worker_for(
        model_dir, server, judge_max_tokens=1, judge_extra_body={}, judge_down_window=4, judge_down_min_calls=4
    )
    singles = [judged_batch([r], model_dir, f"unparsable{i}") for i, r in enumerate(rows)]

    async def scenario():
        out = []
        for b in singles:  # one at a time: the window fills in order
            try:
                out.append(await worker.compute_score(b))
            except Exception as e:
                out.append(e)
        return out

    out = asyncio.run(scenario())
    assert all(isinstance(o, UnjudgedSampleError) and "no Score: 0/1 line" in str(o) for o in out[:3])
    assert all(isinstance(o, LLMFormatError) for o in out[3:]) and len(out) > 3
    assert "ignores the reply format: 4 of the last 4 replies" in str(out[3])


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
            try:
                await RewardLoopWorker(cfg).compute_score_batch(judged_batch(rows[:1], model_dir, "ctx"))
            except UnjudgedSampleError as e:
                return e, stub.times
            return None, stub.times

    # no LLMConfigError ("check the model, key and URL"): a per-sample failure, missing rather than a 0
    error, times = asyncio.run(scenario())
    assert isinstance(error, UnjudgedSampleError) and "prompt exceeds the judge's context" in str(error)
    assert len(times) == 1  # not retried: the same prompt would overflow again


def test_a_router_500_caused_by_extra_body_is_named_at_preflight():
    """Named stub of verl's reward router (naive_router.py re-raises a replica's 4xx, which FastAPI answers as a
    bare 500): the preflight finds that the request works without judge_extra_body's fields and says so,
    instead of "did not answer"."""
    from aiohttp import web

    from rlpt_verl.llm_client import LLMClient, LLMSettings

    class RouterStub(StubJudge):
        async def handle(self, request):
            body = await request.json()
            self.times.append(time.monotonic())
            if "guided_choice" in body:  # the replica's 400 for an unsupported field, as the router passes it
                return web.Response(status=500, text="Internal Server Error")
            return web.Response(status=200, text=OK[1], content_type="application/json")

    async def scenario():
        async with RouterStub([]) as stub:
            settings = LLMSettings(
                base_url=stub.url.replace("http://", "").removesuffix("/v1"),  # verl passes "ip:port"
                model="m",
                extra_body={"guided_choice": ["Score: 0", "Score: 1"]},
                backoff_base_s=0.01,
                role="RLPT judge",
                setting_prefix="judge_",
            )
            client = LLMClient(settings)
            try:
                await client.check()
            finally:
                await client.aclose()

    with pytest.raises(LLMConfigError, match=r"rejects the request fields of judge_extra_body \['guided_choice'\]"):
        asyncio.run(scenario())


def test_vllms_context_wordings_are_context_overflows():
    from rlpt_verl.llm_client import _CONTEXT

    for text in (
        "This model's maximum context length is 2048 tokens. However, you requested 3100 tokens",
        "The decoder prompt (length 3300) is longer than the maximum model length of 3088.",
        "prompt length 4000 exceeds the maximum model length 3088",
    ):
        assert _CONTEXT.search(text), text
    assert not _CONTEXT.search("model 'judge' not found")
