"""The judge's reply modes (generate, choice, logprob) and prompt layouts against real servers.

`transformers serve` (the session's judge) can do only free generation: the preflight must refuse the other
modes in one line. vLLM (the CPU build of the e2e venv, `make e2e-venv`) can do all three: those tests run
when ``RLPT_TEST_VLLM=1`` (``make e2e`` runs them; starting vLLM on 2 cores takes about two minutes).
"""

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from rlpt_verl.reward.loop import make_batch, per_sample, reward_config
from rlpt_verl.tools.judge_cases import grpo_cases
from rlpt_verl.tools.local_judge import LocalVLLMJudge, e2e_vllm

from .test_rlpt_manager import reward_loop

OPEN, CLOSE = "<|startofprediction|>", "<|endofprediction|>"


def cases_from(built, references: int, n: int) -> list[dict]:
    rows = pq.read_table(os.path.join(built["dir"], "val_asr.parquet")).to_pylist()
    return grpo_cases(rows, n=n, seed=1, references=references)


def batch_rows(cases):
    return [
        {
            "prompt": [{"role": "user", "content": "predict the next sentence"}],
            "data_source": "rlpt_asr",
            "reward_model": {"ground_truth": c["reference"]},
            "extra_info": {"target": c["target"]},
        }
        for c in cases
    ]


@pytest.mark.parametrize("mode, field", [("choice", "structured_outputs"), ("logprob", "logprobs")])
def test_a_server_without_the_mode_fails_the_preflight_in_one_line(model_dir, judge_server, ray_cluster, mode, field):
    """transformers serve rejects vLLM's structured outputs and log-probabilities (HTTP 422): the trainer's
    preflight, from verl's own reward worker, names the mode, the field and the fix before any rollout."""
    from rlpt_verl.train.trainer import JudgePreflightError, judge_preflight

    cfg = reward_config(
        model_dir,
        {"judge_base_url": judge_server.url, "judge_model": judge_server.model, "judge_reply_mode": mode},
        num_workers=1,
    )
    with reward_loop(cfg) as manager, pytest.raises(JudgePreflightError) as err:
        judge_preflight(manager)
    line = str(err.value)
    assert f"rejects the request fields of judge_reply_mode={mode}" in line and field in line
    assert "judge_reply_mode=generate" in line and "422" in line
    assert "\n" not in line.strip()


def test_compare_modes_reports_unsupported_modes_and_runs_the_rest(tmp_path, built, model_dir, judge_server):
    cases = cases_from(built, references=1, n=4)
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in cases))
    out = tmp_path / "compare.json"
    p = subprocess.run(
        [sys.executable, "-m", "rlpt_verl.cli", "judge-eval", str(path), "--judge-url", judge_server.url]
        + ["--judge-model", judge_server.model, "--tokenizer", model_dir, "--compare-modes", "--output", str(out)]
        + ["--reward-kwargs", json.dumps(judge_server.verdict_settings)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    report = json.load(open(out))
    rows = report["combinations"]
    assert set(rows) == {f"{a}+{b}" for a in ("paper", "cache_friendly") for b in ("generate", "choice", "logprob")}
    for name, row in rows.items():
        if name.endswith("+generate"):  # the logit_bias verdict: one token, always a verdict
            assert "unsupported" not in row and row["judged"] == len(cases) and row["unjudged"] == 0
            assert row["completion_tokens_per_call"] == 1.0
        else:
            assert "judge_reply_mode=" + name.split("+")[1] in row["unsupported"]
    assert report["prefix_cache_reset"] is False  # transformers serve has no /reset_prefix_cache
    assert "unsupported: " in p.stdout and "paper+generate" in p.stdout


# -- vLLM ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vllm_judge(model_dir):
    if os.environ.get("RLPT_TEST_VLLM") != "1":
        pytest.skip("set RLPT_TEST_VLLM=1 (make e2e does) to start vLLM's CPU build as the judge")
    exe = e2e_vllm()
    if exe is None:
        pytest.skip("no e2e venv with vLLM: run `make e2e-venv`")
    server = LocalVLLMJudge(model_dir, exe).start()
    yield server
    server.stop()


def test_choice_and_logprob_verdicts_inside_verls_reward_loop(built, model_dir, vllm_judge, ray_cluster):
    """Constrained verdicts from a real vLLM judge through verl's reward loop: no parse failure and a fixed
    reply length in `choice`; one completion token, P(1) and a verdict that follows it in `logprob`; the soft
    reward is that probability, acc stays the 0/1 verdict."""
    from rlpt_verl.tasks.prompt_meter import load_tokenizer
    from rlpt_verl.train.trainer import judge_preflight

    tok = load_tokenizer(model_dir)
    cases = cases_from(built, references=2, n=4)
    responses = [f"Reasoning. {OPEN}{c['prediction']}{CLOSE}" for c in cases]
    base = {"judge_base_url": vllm_judge.url, "judge_model": vllm_judge.model, "prefix_shortcut": False}
    results = {}
    for mode, extra in (("choice", {}), ("logprob", {}), ("soft", {"judge_soft_reward": True})):
        kwargs = {**base, "judge_reply_mode": "logprob" if mode == "soft" else mode, **extra}
        with reward_loop(reward_config(model_dir, kwargs, num_workers=1)) as manager:
            assert len(judge_preflight(manager)) == 1  # the mode's own probe passed
            results[mode] = per_sample(manager.compute_rm_score(make_batch(batch_rows(cases), responses, tok)))
    for mode, samples in results.items():
        assert len(samples) == len(cases)
        assert not any(s["parse_failure"] or s["judge_error"] for s in samples), mode
        called = [s for s in samples if s["judge_called"]]
        assert called and all(s["judge_called"] or s["cache_hit"] for s in samples)  # no shortcut: all judged
        if mode == "choice":
            assert len({s["judge_completion_tokens"] for s in called}) == 1  # "Score: 0" and "Score: 1": one length
            assert all(s["judge_requests"] == 1 for s in called)  # no re-ask: a constrained reply always parses
        else:
            assert all(s["judge_completion_tokens"] == 1 for s in called)
            assert all(0 < s["judge_p_one"] < 1 for s in samples)
            assert all(s["acc"] == float(s["judge_p_one"] > 0.5) for s in samples)
    for soft, hard in zip(results["soft"], results["logprob"], strict=True):
        assert soft["score"] == pytest.approx(soft["judge_p_one"], abs=1e-6) and soft["acc"] == hard["acc"]
        assert hard["score"] == hard["acc"]
    assert [s["acc"] for s in results["soft"]] == [s["acc"] for s in results["logprob"]]  # greedy: the same


def test_compare_modes_on_vllm_measures_cost_and_the_cache_friendly_layout(tmp_path, built, model_dir, vllm_judge):
    """`rlpt judge-eval --compare-modes` against vLLM: every combination runs, the cache is reset between them,
    a logprob verdict is one token, and the cache-friendly layout gets more of its prompt from vLLM's prefix
    cache than the paper's on a GRPO-like batch (the n predictions of a reference share all but their own
    text)."""
    cases = cases_from(built, references=2, n=6)
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in cases))
    out = tmp_path / "compare.json"
    p = subprocess.run(
        [sys.executable, "-m", "rlpt_verl.cli", "judge-eval", str(path), "--judge-url", vllm_judge.url]
        + ["--judge-model", vllm_judge.model, "--tokenizer", model_dir, "--compare-modes", "--output", str(out)]
        + ["--reward-kwargs", json.dumps({"prefix_shortcut": False})],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    report = json.load(open(out))
    rows = report["combinations"]
    assert report["prefix_cache_reset"] is True
    assert not [name for name, row in rows.items() if "unsupported" in row]
    for layout in ("paper", "cache_friendly"):
        assert rows[f"{layout}+logprob"]["completion_tokens_per_call"] == 1.0
        assert rows[f"{layout}+choice"]["unjudged"] == 0 and rows[f"{layout}+logprob"]["unjudged"] == 0
    for mode in ("choice", "logprob"):
        paper, friendly = rows[f"paper+{mode}"], rows[f"cache_friendly+{mode}"]
        assert friendly["prefix_cache_hit_rate"] > paper["prefix_cache_hit_rate"], (mode, paper, friendly)
        assert friendly["prompt_tokens_per_call"] == pytest.approx(paper["prompt_tokens_per_call"], abs=2)
    agreement = report["agreement"]["paper+choice"]["paper+logprob"]
    assert agreement["cases"] > 0 and 0 <= agreement["share"] <= 1
