"""`rlpt eval` end to end: a real `transformers serve` SmolLM2 server, real champ problems, Math-Verify.

Figures are recomputed from the verdicts the run wrote (never hard-coded): the report must agree with
the unbiased estimator applied to them, and a resumed run must not ask for a finished sample again.
"""

import json
import os
import signal
import subprocess
import sys
import time
from math import comb

import pytest

from rlpt_verl.tools import assets
from rlpt_verl.tools.local_judge import free_port

ALLOWED = {"correct", "wrong", "no_answer", "unparsed", "error", "timeout"}


def rlpt_eval(*args, timeout=900):
    return subprocess.run(
        [sys.executable, "-m", "rlpt_verl.cli", "eval", *map(str, args), "--quiet"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_jsonl(path, records):
    with open(path, "w") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def champ_bench(tmp_path_factory):
    short = [p for p in assets.champ_problems() if len(p["answer"]) <= 6][:3]
    path = tmp_path_factory.mktemp("bench") / "champ.jsonl"
    return write_jsonl(path, [{"id": p["id"], "problem": p["problem"], "answer": p["answer"]} for p in short])


def lines(path):
    with open(path) as fh:
        return [json.loads(x) for x in fh]


def expected_from_verdicts(out, n, ks):
    per_item = {}
    for v in lines(os.path.join(out, "verdicts.jsonl")):
        assert v["verdict"] in ALLOWED
        per_item.setdefault(v["item"], []).append(v["verdict"] == "correct")
    counts = [(len(v), sum(v)) for v in per_item.values()]
    assert all(n_ == n for n_, _ in counts)
    unbiased = {k: sum(1 - comb(n_ - c, k) / comb(n_, k) for n_, c in counts) / len(counts) for k in ks}
    return counts, unbiased


def test_generate_score_report_and_a_second_run_asks_nothing(judge_server, champ_bench, tmp_path):
    out = tmp_path / "run"
    common = [champ_bench, "-o", out, "--model-url", judge_server.url, "--model", judge_server.model]
    common += ["--n", 2, "--k", "1,2", "--max-tokens", 48, "--concurrency", 2]
    r = rlpt_eval(*common)
    assert r.returncode == 0, r.stderr
    samples = lines(out / "samples.jsonl")
    assert len(samples) == 6 and len({(s["item"], s["i"]) for s in samples}) == 6
    assert all(s["prompt"][-1]["content"].endswith("within \\boxed{}.") for s in samples)  # what was sent
    report = json.load(open(out / "eval_report.json"))
    b = report["benchmarks"]["champ"]
    counts, unbiased = expected_from_verdicts(out, 2, (1, 2))
    assert (b["items"], b["n"], b["samples"], b["responses"]) == (3, 2, 6, "generated")
    assert b["metrics"]["pass@1"] == pytest.approx(unbiased[1]) and b["metrics"]["pass@2"] == pytest.approx(unbiased[2])
    assert b["curve"] == pytest.approx([unbiased[1], unbiased[2]])
    assert b["fields"][0]["question"] == "problem" and b["fields"][0]["answer"] == "answer"
    s = report["settings"]
    assert (s["n"], s["temperature"], s["top_p"], s["max_tokens"], s["model"]) == (2, 0.6, 0.95, 48, judge_server.model)
    assert "| champ | 3 | 2 |" in (out / "eval_table.md").read_text()
    assert (out / "passk_champ.svg").read_text().startswith("<svg")
    assert "champ: 3 items x n=2" in r.stdout

    before = judge_server.request_count()
    again = rlpt_eval(*common)
    assert again.returncode == 0, again.stderr
    assert judge_server.request_count() == before  # nothing regenerated
    report2 = json.load(open(out / "eval_report.json"))
    assert report2["generation"]["resumed"] == 6 and report2["benchmarks"] == report["benchmarks"]

    dead = f"http://127.0.0.1:{free_port()}/v1"  # the GPUs are gone: a finished run is rescored without them
    rescore = rlpt_eval(*[dead if x == judge_server.url else x for x in common])
    assert rescore.returncode == 0, rescore.stderr
    report3 = json.load(open(out / "eval_report.json"))
    assert report3["benchmarks"] == report["benchmarks"] and report3["server"] == report["server"]

    changed = rlpt_eval(*[x if x != 48 else 64 for x in common])  # other settings into the same folder
    assert changed.returncode == 2 and "max_tokens: 48 -> 64" in changed.stderr
    assert changed.stderr.count("\n") == 1

    recs = lines(champ_bench)  # the benchmark file edited under the same ids: that item's samples are stale
    recs[1]["answer"] = recs[1]["answer"] + "0"
    edited = write_jsonl(tmp_path / "champ.jsonl", recs)
    before = judge_server.request_count()
    r = rlpt_eval(*[edited if x == champ_bench else x for x in common])
    assert r.returncode == 0, r.stderr
    report4 = json.load(open(out / "eval_report.json"))
    assert (report4["generation"]["reasked"], report4["generation"]["resumed"]) == (2, 4)
    assert judge_server.request_count() - before >= 2 and "2 asked again" in r.stdout
    by_item = {}
    for s in lines(out / "samples.jsonl"):
        by_item.setdefault(s["item"], set()).add(s["ask"])
    assert len(by_item[recs[1]["id"]]) == 2 and len(by_item[recs[0]["id"]]) == 1


def test_resume_after_sigkill_keeps_every_finished_sample(judge_server, champ_bench, tmp_path):
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "rlpt_verl.cli", "eval", champ_bench, "-o", str(out), "--quiet"]
    argv += ["--model-url", judge_server.url, "--model", judge_server.model]
    argv += ["--n", "4", "--k", "1,4", "--max-tokens", "24", "--concurrency", "1"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    path = out / "samples.jsonl"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= 3:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = path.read_text()
    assert 3 <= len(kept.splitlines()) < 12
    with open(path, "a") as fh:
        fh.write('{"bench": "champ", "item": "P_')  # a line torn by the kill
    r = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    final = path.read_text()
    assert final.startswith(kept.rstrip("\n") + "\n") and '"item": "P_\n' not in final  # kept, torn line cut
    samples = lines(path)
    assert len(samples) == 12 and len({(s["item"], s["i"]) for s in samples}) == 12  # none asked twice
    report = json.load(open(out / "eval_report.json"))
    assert report["generation"]["resumed"] == len(kept.splitlines())
    _, unbiased = expected_from_verdicts(out, 4, (1, 4))
    assert report["benchmarks"]["champ"]["metrics"]["pass@4"] == pytest.approx(unbiased[4])
    rerun = subprocess.run(argv, capture_output=True, text=True, timeout=900)  # the same command once more
    assert rerun.returncode == 0, rerun.stderr
    assert json.load(open(out / "eval_report.json"))["benchmarks"] == report["benchmarks"]


def test_a_server_frozen_mid_run_ends_the_run_in_bounded_time(judge_server, champ_bench, tmp_path):
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "rlpt_verl.cli", "eval", champ_bench, "-o", str(out), "--quiet"]
    argv += ["--model-url", judge_server.url, "--model", judge_server.model, "--request-timeout", "5"]
    argv += ["--n", "4", "--k", "1", "--max-tokens", "16", "--concurrency", "1"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    path = out / "samples.jsonl"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None and not (path.exists() and path.read_text()):
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before the server could be frozen"
    judge_server.pause()  # SIGSTOP: connections stay open, nothing answers
    t0 = time.monotonic()
    try:
        _, err = proc.communicate(timeout=300)
    finally:
        judge_server.resume()
    took = time.monotonic() - t0
    assert proc.returncode == 1 and "looks down: no reply for" in err and err.count("\n") == 1, err
    assert took < 200, took  # the stall limit is 30 s at --request-timeout 5 (was ~11 minutes at 10)
    assert lines(path)  # what arrived before the freeze is kept for the next run


def test_wrong_server_or_model_fails_in_one_line(judge_server, champ_bench, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    r = rlpt_eval(champ_bench, "-o", tmp_path / "a", "--model-url", dead, "--model", "m", "--n", 1, "--k", 1)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and f"no model server answers at {dead}" in r.stderr
    r = rlpt_eval(champ_bench, "-o", tmp_path / "b", "--model-url", judge_server.url, "--model", "no-such-model",
                  "--n", 1, "--k", 1)  # fmt: skip
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "rejected the request (HTTP 400)" in r.stderr and "no-such-model" in r.stderr
    fixed = rlpt_eval(champ_bench, "-o", tmp_path / "b", "--model-url", judge_server.url, "--model",
                      judge_server.model, "--n", 1, "--k", 1, "--max-tokens", 8)  # fmt: skip
    assert fixed.returncode == 0, fixed.stderr  # nothing was drawn into b: the corrected command runs
    assert json.load(open(tmp_path / "b" / "run.json"))["sampling"]["model"] == judge_server.model


MC = [
    ("C", ["The answer is C", "Answer: (A)", "C", "I don't know"]),  # correct, wrong, correct, unparsed
    ("A", ["\\boxed{A}", "A is wrong, so the answer is B", "The answer is A", "the answer is a number"]),
]


def mc_bench(path, responses_of=lambda i, rs: rs):
    recs = []
    for i, (key, rs) in enumerate(MC):
        recs.append({"question": f"Q{i}?", "choices": ["w", "x", "y", "z"], "answer": "ABCD".index(key),
                     "responses": responses_of(i, rs)})  # fmt: skip
    return write_jsonl(path, recs)


def test_given_responses_are_scored_without_a_server_and_compared_with_a_baseline(tmp_path):
    bench = mc_bench(tmp_path / "mmlu.jsonl")
    champ = next(p for p in assets.champ_problems() if p["answer"] == "239")
    maths = write_jsonl(tmp_path / "champ1.jsonl", [{"problem": champ["problem"], "answer": "239",
                        "responses": ["So the answer is \\boxed{239}.", "I get $238$.", "no idea"]}])  # fmt: skip
    r = rlpt_eval(bench, maths, "-o", tmp_path / "base", "--n", 3, "--k", "1,2")
    assert r.returncode == 0, r.stderr
    rep = json.load(open(tmp_path / "base" / "eval_report.json"))
    mmlu = rep["benchmarks"]["mmlu"]
    assert mmlu["verdicts"] == {"correct": 4, "wrong": 2, "unparsed": 2}
    assert mmlu["metrics"]["pass@1"] == pytest.approx((2 / 4 + 2 / 4) / 2)
    assert mmlu["metrics"]["pass@2"] == pytest.approx(1 - comb(2, 2) / comb(4, 2))
    assert mmlu["unparsed_rate"] == pytest.approx(2 / 8) and mmlu["responses"] == "given"
    assert rep["benchmarks"]["champ1"]["verdicts"] == {"correct": 1, "no_answer": 1, "wrong": 1}

    better = mc_bench(tmp_path / "mmlu.jsonl", lambda i, rs: [MC[i][0]] * 4)  # every sample right
    r = rlpt_eval(better, "-o", tmp_path / "new", "--n", 3, "--k", "1", "--baseline", tmp_path / "base")
    assert r.returncode == 0, r.stderr
    table = (tmp_path / "new" / "eval_table.md").read_text()
    assert "| mmlu | 2 | 4 | 100.0 | 50.0 | +50.0 |" in table
    assert table.startswith("responses: given") and "temperature" not in table.splitlines()[0]
    assert "stroke-dasharray" in (tmp_path / "new" / "passk_mmlu.svg").read_text()  # the baseline's curve


@pytest.mark.parametrize(
    "args, message",
    [
        (["--n", 4, "--k", "1,8"], "--k 8 is above --n 4"),
        (["--k", "x"], "--k"),
        ([], "carry no responses: give --model-url and --model"),
        (["--baseline", "/no/such/run"], "--baseline /no/such/run: no readable eval_report.json"),
        (["--question-field", "q"], "--question-field 'q' is not a field of these records (they have id, problem"),
        (["--request-timeout", "0"], "--request-timeout must be > 0"),
    ],
)
def test_bad_arguments_are_one_line(tmp_path, champ_bench, args, message):
    r = rlpt_eval(champ_bench, "-o", tmp_path / "o", *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_half_given_responses_and_missing_files_are_refused(tmp_path):
    half = mc_bench(tmp_path / "half.jsonl", lambda i, rs: rs if i == 0 else None)
    r = rlpt_eval(half, "-o", tmp_path / "o")
    assert r.returncode == 2 and "1 of 2 items carry responses" in r.stderr
    r = rlpt_eval(tmp_path / "missing.jsonl", "-o", tmp_path / "o")
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_rpt_splits_are_scored_with_the_rpt_reward(rpt_built, tmp_path):
    """Rows of a real `build-rpt` split, with responses: the true next token, a wrong token, no \\boxed{}."""
    import pyarrow.parquet as pq

    rows = pq.read_table(os.path.join(rpt_built["dir"], "val_easy.parquet")).to_pylist()[:4]
    assert rows
    for row in rows:
        token = row["extra_info"]["next_token"]
        row["responses"] = [
            f"<think>It continues.</think> \\boxed{{{token}}}",
            "<think>?</think> \\boxed{zzzq}",
            "no box",
        ]
    bench = write_jsonl(tmp_path / "rpt_easy.jsonl", rows)
    r = rlpt_eval(bench, "-o", tmp_path / "o", "--n", 3, "--k", "1,2")
    assert r.returncode == 0, r.stderr
    b = json.load(open(tmp_path / "o" / "eval_report.json"))["benchmarks"]["rpt_easy"]
    assert b["kind"] == ["rpt"] and b["items"] == len(rows)
    assert b["verdicts"] == {"correct": len(rows), "wrong": len(rows), "unparsed": len(rows)}
    assert b["metrics"]["pass@1"] == pytest.approx(1 / 3) and b["metrics"]["pass@2"] == pytest.approx(2 / 3)


def test_verl_generation_output_is_scored_as_given(tmp_path):
    """`rlpt math-data` rows plus a `responses` column written by pandas, as verl's main_generation_server does."""
    import pandas as pd

    numeric = [p for p in assets.champ_problems() if p["answer"].isdigit()][:3]
    src = write_jsonl(tmp_path / "q.jsonl", [{"problem": p["problem"], "answer": p["answer"]} for p in numeric])
    conv = subprocess.run(
        [sys.executable, "-m", "rlpt_verl.cli", "math-data", src, "-o", str(tmp_path / "m"), "--val-fraction", "0"],
        capture_output=True,
        text=True,
    )
    assert conv.returncode == 0, conv.stderr
    df = pd.read_parquet(tmp_path / "m" / "train.parquet")
    df["responses"] = [[f"So \\boxed{{{gt['ground_truth']}}}.", "\\boxed{987654321}"] for gt in df["reward_model"]]
    df.to_parquet(tmp_path / "gen.parquet")
    r = rlpt_eval(tmp_path / "gen.parquet", "-o", tmp_path / "o", "--n", 2, "--k", 1)
    assert r.returncode == 0, r.stderr
    b = json.load(open(tmp_path / "o" / "eval_report.json"))["benchmarks"]["gen"]
    assert b["items"] == 3 and b["verdicts"] == {"correct": 3, "wrong": 3}
    assert b["fields"][0]["question"] == "prompt" and b["metrics"]["pass@1"] == pytest.approx(0.5)


def test_gpqa_order_kor_categories_outcomes_and_coverage_are_reported(tmp_path):
    """Given responses (no server): GPQA's order is recorded per sample and can be given back; KOR-Bench from its
    own layout (data/<category>/sample.jsonl beside rule.jsonl) is one benchmark scored per category; ambiguous
    replies and Pass@k coverage are counted; the report names what graded each benchmark."""
    gpqa_rec = {"Question": "Which?", "Correct Answer": "right", "Incorrect Answer 1": "w1",
                "Incorrect Answer 2": "w2", "Incorrect Answer 3": "w3", "Record ID": "rec1"}  # fmt: skip
    replies = ["Answer: A", "Answer: B. No: \\boxed{C}"]
    r = rlpt_eval(write_jsonl(tmp_path / "gpqa.jsonl", [{**gpqa_rec, "responses": replies}]), "-o", tmp_path / "g1",
                  "--n", 2, "--k", "1")  # fmt: skip
    assert r.returncode == 0, r.stderr
    got = lines(tmp_path / "g1" / "verdicts.jsonl")
    order = got[0]["option_order"]
    assert got[0]["choices"] == [("right", "w1", "w2", "w3")[j] for j in order]
    correct_letter = "ABCD"[order.index(0)]
    assert [v["verdict"] == "correct" for v in got] == [correct_letter == "A", correct_letter == "C"]
    assert got[1]["ambiguous"] is True and got[1]["answer"] == "C"
    rep = json.load(open(tmp_path / "g1" / "eval_report.json"))["benchmarks"]["gpqa"]
    assert rep["outcomes"]["ambiguous"] == 1 and rep["outcomes"]["correct"] + rep["outcomes"]["wrong"] == 2
    assert rep["graders"]["multiple_choice"]["extractor"].startswith("rlpt-mc-")

    os.makedirs(tmp_path / "elsewhere")  # the order given back, from another path: the same verdicts
    given = write_jsonl(
        tmp_path / "elsewhere" / "gpqa.jsonl", [{**gpqa_rec, "option_order": order, "responses": replies}]
    )
    r = rlpt_eval(given, "-o", tmp_path / "g2", "--n", 2, "--k", "1")
    assert r.returncode == 0, r.stderr
    assert [v["verdict"] for v in lines(tmp_path / "g2" / "verdicts.jsonl")] == [v["verdict"] for v in got]

    kor = tmp_path / "data"
    for category, answer, rs in [("operation", "[[4or-12]]", ["so [[-12 or 4]]", "[[4]]"]),
                                 ("cipher", "[[LOVE]]", ["[[HATE]]", "no brackets"]),
                                 ("counterfactual", "[[A]]", ["[[B]]", "[[A]]"])]:  # fmt: skip
        os.makedirs(kor / category)
        write_jsonl(kor / category / "rule.jsonl", [{"idx": "1", "rule_content": f"the {category} rule"}])
        record = {"idx": "1", "question": "Q?", "answer": answer, "rule_id": "1", "responses": rs}
        write_jsonl(
            kor / category / "sample.jsonl", [record | ({"real_life_answer": "[[B]]"} if answer == "[[A]]" else {})]
        )
    maths = write_jsonl(tmp_path / "aime.jsonl", [
        {"id": "a", "problem": "P", "answer": "3", "responses": ["\\boxed{3}"] * 4},
        {"id": "b", "problem": "Q", "answer": "5", "responses": ["\\boxed{4}", "\\boxed{5}"]}])  # fmt: skip
    kor_files = [kor / c / "sample.jsonl" for c in ("operation", "cipher", "counterfactual")]
    r = rlpt_eval(*kor_files, maths, "-o", tmp_path / "k", "--n", 4, "--k", "1,4")
    assert r.returncode == 0, r.stderr
    rep = json.load(open(tmp_path / "k" / "eval_report.json"))["benchmarks"]
    cats = rep["korbench"]["categories"]
    assert cats["operation"]["pass@1"] == 0.5 and cats["cipher"]["pass@1"] == 0.0
    assert cats["counterfactual"]["pass@1"] == 0.5 and cats["counterfactual"]["real_life_answers"] == 1
    assert (
        rep["korbench"]["metrics"]["pass@1"] == pytest.approx(1 / 3) and rep["korbench"]["outcomes"]["no_answer"] == 1
    )
    assert rep["korbench"]["graders"]["korbench"]["extractor"].startswith("rlpt-kor-")
    aime = rep["aime"]  # item b has 2 samples: pass@4 is over item a alone, and says so
    assert aime["metrics"]["pass@4"] == 1.0 and aime["metrics"]["coverage"] == {"pass@4": 0.5}
    assert aime["graders"]["math"]["checker"].startswith("math-verify ")


def test_an_item_with_no_responses_is_counted_not_divided_by(tmp_path):
    records = [{"id": "x", "problem": "P", "answer": "1", "responses": []},
               {"id": "y", "problem": "Q", "answer": "2", "responses": ["\\boxed{2}"]}]  # fmt: skip
    bench = write_jsonl(tmp_path / "b.jsonl", records)
    r = rlpt_eval(bench, "-o", tmp_path / "o", "--n", 1, "--k", "1")
    assert r.returncode == 0, r.stderr
    rep = json.load(open(tmp_path / "o" / "eval_report.json"))["benchmarks"]["b"]
    assert rep["items"] == 1 and rep["skipped"] == {"no_responses": 1} and rep["metrics"]["pass@1"] == 1.0
    only_empty = write_jsonl(tmp_path / "e.jsonl", [{"id": "x", "problem": "P", "answer": "1", "responses": []}])
    r = rlpt_eval(only_empty, "-o", tmp_path / "o2", "--n", 1, "--k", "1")
    assert r.returncode == 2 and "no usable item" in r.stderr and "no_responses" in r.stderr
