"""`rlpt judge-eval` against the real local judge, through verl's RewardLoopWorker."""

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq


def test_judge_eval_reports_agreement(tmp_path, built, judge_server, model_dir):
    rows = pq.read_table(os.path.join(built["dir"], "val_asr.parquet")).to_pylist()[:3]
    cases = []
    for r in rows:
        ref, target = r["reward_model"]["ground_truth"], r["extra_info"]["target"]
        cases.append({"prediction": target, "reference": ref, "label": 1})  # textual prefix: no call
        cases.append(
            {"response": f"hmm <|startofprediction|>{target}<|endofprediction|>", "reference": ref, "label": 1}
        )  # full response form, also a textual prefix
        cases.append({"prediction": "Completely unrelated words about gardening.", "reference": ref, "label": 0})
        cases.append({"response": "no tags here", "reference": ref, "label": 0})
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in cases) + "not json\n" + json.dumps({"label": 1}) + "\n")
    out = tmp_path / "report.json"
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlpt_verl.cli",
            "judge-eval",
            str(path),
            "--judge-url",
            judge_server.url,
            "--judge-model",
            judge_server.model,
            "--tokenizer",
            model_dir,
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    report = json.load(open(out))
    assert report["cases"] == 12 and report["skipped"] == {"malformed_json": 1, "missing_reference": 1}
    c = report["confusion"]
    assert c["tp"] == 6 and c["fn"] == 0  # shortcut cases are exact
    assert c["tn"] + c["fp"] == 6 and c["tn"] >= 3  # no-tags cases are always 0
    assert report["accuracy"] == (c["tp"] + c["tn"]) / 12
    assert report["counters"]["shortcut"] == 6 and report["counters"]["format_error"] == 3
    assert report["counters"]["judge_called"] == 3 and report["judge_calls_avoided"] == 9
    assert report["latency_s"]["p50"] is not None and report["samples_per_s"] > 0
    assert "accuracy" in p.stdout and "confusion" in p.stdout


def test_judge_eval_bad_input(tmp_path, model_dir):
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlpt_verl.cli",
            "judge-eval",
            str(tmp_path / "none.jsonl"),
            "--judge-url",
            "http://127.0.0.1:9/v1",
            "--judge-model",
            "m",
            "--tokenizer",
            model_dir,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 2 and "cannot read cases file" in p.stderr and "Traceback" not in p.stderr
