"""`rlpt judge-eval` against the real local judge, through verl's RewardLoopWorker: verdicts only from a judge
(or a rule) that answered; a judge that did not answer is never reported as a verdict."""

import json
import os
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from rlpt_verl.tools.local_judge import LocalJudgeServer, free_port

FILLER = "zebras quietly painted seven purple lanterns beneath a frozen orchard while distant drums".split()


def long_unrelated(target: str) -> str:
    """Unrelated words, as many as the target has: passes the coverage and length guards, needs the judge."""
    return " ".join(FILLER[k % len(FILLER)] for k in range(len(target.split())))


def judge_eval(cases_path, url, model, model_dir, *extra, timeout=600):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "rlpt_verl.cli",
            "judge-eval",
            str(cases_path),
            "--judge-url",
            url,
            "--judge-model",
            model,
            "--tokenizer",
            model_dir,
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def asr_rows(built):
    return pq.read_table(os.path.join(built["dir"], "val_asr.parquet")).to_pylist()


def test_judge_eval_reports_agreement(tmp_path, asr_rows, judge_server, model_dir):
    cases = []
    for r in asr_rows[:3]:
        ref, target = r["reward_model"]["ground_truth"], r["extra_info"]["target"]
        cases.append({"prediction": target, "reference": ref, "target": target, "label": 1})  # textual: no call
        cases.append(
            {"response": f"hmm <|startofprediction|>{target}<|endofprediction|>", "reference": ref, "label": 1}
        )  # full response form, also a textual prefix (target: the reference's first sentence)
        cases.append({"prediction": long_unrelated(target), "reference": ref, "target": target, "label": 0})
        cases.append({"response": "no tags here", "reference": ref, "label": 0})
        cases.append({"prediction": target.split()[0], "reference": ref, "target": target, "label": 0})  # too short
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in cases) + "not json\n" + json.dumps({"label": 1}) + "\n")
    out = tmp_path / "report.json"
    p = judge_eval(path, judge_server.url, judge_server.model, model_dir, "--output", str(out))
    report = json.load(open(out))  # written in every case
    assert report["cases"] == 15 and report["skipped"] == {"malformed_json": 1, "missing_reference": 1}
    assert report["judged"] + report["unjudged"] == 15
    c = report["confusion"]
    assert sum(c.values()) == report["judged"] >= 12  # rule-decided cases always have a verdict
    assert c["tp"] == 6 and c["fn"] == 0  # textual prefixes covering the target
    assert c["tn"] >= 6  # no tags and one-word predictions are always 0
    assert report["accuracy"] == (c["tp"] + c["tn"]) / report["judged"]
    counters = report["counters"]
    assert counters["shortcut"] == 6 and counters["format_error"] == 3 and counters["too_short"] == 3
    assert counters["judge_called"] == 3 and report["judge_calls_avoided"] == 12
    # SmolLM2-135M is a weak judge: a reply that never parses is "not judged", never a 0
    unparsable = report["unjudged_by_reason"].get("unparsable_reply", 0)
    assert unparsable == counters["parse_failure"] == report["unjudged"]
    if report["unjudged"]:
        assert p.returncode == 1 and "Traceback" not in p.stderr
        assert (
            p.stderr.strip()
            .splitlines()[-1]
            .startswith(
                f"rlpt judge-eval: failed: {unparsable} of 15 cases were not judged (unparsable_reply {unparsable})"
            )
        )
    else:
        assert p.returncode == 0, p.stderr[-2000:]
    assert "judged cases: accuracy" in p.stdout and "confusion" in p.stdout
    cost = report["judge_cost"]  # the same figures a training step logs under rlpt/judge/
    assert (cost["calls"], cost["avoided/shortcut"], cost["avoided/format"], cost["avoided/guards"]) == (3, 6, 3, 3)
    assert cost["prompt_tokens"] > 300 and cost["tokens_estimated"] == 0 and cost["seconds"] > 0
    assert "judge cost: 3 calls" in p.stdout and "avoided: format 3, guards 3, shortcut 6" in p.stdout


def cases_file(tmp_path, asr_rows, n=20):
    cases = [
        {
            "prediction": f"{i} {long_unrelated(r['extra_info']['target'])}",
            "reference": r["reward_model"]["ground_truth"],
            "target": r["extra_info"]["target"],
            "label": 0,
        }
        for i, r in enumerate((asr_rows * 4)[:n])
    ]
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in cases))
    return path


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_judge_that_does_not_answer_is_one_line_and_exit_1(tmp_path, asr_rows, model_dir, judge_server, scheme):
    """A wrong port, or https:// against a plain-http server: no accuracy is printed, exit 1, one line."""
    port = free_port() if scheme == "http" else judge_server.port
    url = f"{scheme}://127.0.0.1:{port}/v1"
    out = tmp_path / "report.json"
    t0 = time.monotonic()
    p = judge_eval(cases_file(tmp_path, asr_rows), url, judge_server.model, model_dir, "--output", str(out))
    assert time.monotonic() - t0 < 120
    assert p.returncode == 1 and "Traceback" not in p.stderr
    line = p.stderr.strip().splitlines()[-1]
    assert line.startswith("rlpt judge-eval: failed: 20 of 20 cases were not judged (not_run_judge_down 20)")
    assert f"{url}/chat/completions did not answer: 2 request(s)" in line
    if scheme == "https":
        assert "try http://" in line
    report = json.load(open(out))
    assert report["judged"] == 0 and report["accuracy"] is None
    assert "latency: none (no case was judged)" in p.stdout and "latency p50" not in p.stdout


def test_judge_killed_mid_run(tmp_path, asr_rows, model_dir):
    """20 judged cases, the server killed after the first answers: one line naming the URL, the partial
    report written first, no traceback (before, 16+ cases ended in a traceback and no --output)."""
    server = LocalJudgeServer(model_dir).start()
    out = tmp_path / "report.json"
    kwargs = {
        "judge_max_retries": 1,
        "judge_retry_budget_s": 5,
        "judge_backoff_max_s": 0.5,
        "judge_down_window": 8,
        "judge_down_min_calls": 4,
    }
    served = server.request_count()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rlpt_verl.cli",
            "judge-eval",
            str(cases_file(tmp_path, asr_rows)),
            "--judge-url",
            server.url,
            "--judge-model",
            server.model,
            "--tokenizer",
            model_dir,
            "--output",
            str(out),
            "--reward-kwargs",
            json.dumps(kwargs),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while server.request_count() == served and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)  # the probe has been answered: judging starts now
        server.stop()
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        server.stop()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1 and "Traceback" not in stderr, stderr[-3000:]
    line = stderr.strip().splitlines()[-1]
    assert (
        "cases were not judged" in line and f"stopped: RLPT judge at {server.url}/chat/completions looks down" in line
    )
    assert "connection" in line
    report = json.load(open(out))
    assert report["judged"] + report["unjudged"] == 20 and report["unjudged"] >= 1
    assert report["stopped"] and "accuracy" in stdout
    # cases the breaker never sent are unjudged, not "needed no call"
    assert report["judge_calls_avoided"] <= report["judged"]
    assert all(p["verdict"] is None for p in report["per_case"] if p.get("judge_error"))


def test_judge_eval_bad_input(tmp_path, model_dir):
    p = judge_eval(tmp_path / "none.jsonl", "http://127.0.0.1:9/v1", "m", model_dir, timeout=300)
    assert p.returncode == 2 and "cannot read cases file" in p.stderr and "Traceback" not in p.stderr


def test_unwritable_output_fails_before_judging(tmp_path, model_dir):
    cases = tmp_path / "c.jsonl"
    cases.write_text(json.dumps({"prediction": "x", "reference": "y", "label": 1}) + "\n")
    t0 = time.monotonic()
    p = judge_eval(cases, "http://127.0.0.1:9/v1", "m", model_dir, "--output", str(tmp_path / "no" / "r.json"))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert (
        p.stderr.strip()
        == f"rlpt judge-eval: error: --output {tmp_path}/no/r.json: folder {tmp_path}/no does not exist"
    )
    assert time.monotonic() - t0 < 60
