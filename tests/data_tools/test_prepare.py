"""`rlpt prepare` end to end on real text (SPEC §5): accounting, stages, engines, resume, bad input."""

import filecmp
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from rlpt_verl.data_tools.decontam import DecontamConfig, words
from rlpt_verl.data_tools.filters import FilterConfig
from rlpt_verl.data_tools.prepare import PrepareConfig, run_prepare

from ..conftest import ctrl_c, start_interruptible


def config(corpus, out, **kw) -> PrepareConfig:
    base = dict(
        inputs=(corpus["dir"],),
        output=str(out),
        id_field="id",
        shard_docs=60,
        filters=FilterConfig(languages=("en",)),
        decontam=DecontamConfig(eval_sets=(corpus["eval"],)),
    )
    return PrepareConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def prepared(prepare_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    report = run_prepare(config(prepare_corpus, out), quiet=True)
    return {"dir": str(out), "report": report}


def rows(out, family):
    return [
        r for f in sorted(glob.glob(os.path.join(out, family, "part-*.parquet"))) for r in pq.read_table(f).to_pylist()
    ]


def test_every_document_is_kept_or_dropped_with_a_reason(prepared):
    rep, out = prepared["report"], prepared["dir"]
    kept, dropped = rows(out, "kept"), rows(out, "dropped")
    assert rep["accounting_ok"] and rep["documents_in"] == len(kept) + len(dropped) == 15 + 200 + 270 + 3 + 1
    assert rep["documents_kept"] == len(kept) and rep["documents_dropped"] == len(dropped)
    assert rep["records_skipped_at_read"] == {"malformed_json": 1}
    by_reason = {}
    for d in dropped:
        by_reason[f"{d['stage']}:{d['reason']}"] = by_reason.get(f"{d['stage']}:{d['reason']}", 0) + 1
    assert by_reason == rep["dropped_by_reason"]
    assert rep["dropped_by_reason"]["normalize:empty_after_normalize"] == 1  # zero-width spaces and a control character
    flow = rep["stages"]
    assert flow[0]["in"] == rep["documents_in"] and flow[-1]["out"] == len(kept)
    for stage, nxt in zip(flow, flow[1:], strict=False):
        assert stage["in"] == stage["out"] + stage["dropped"] and stage["out"] == nxt["in"]
        assert stage["dropped"] == sum(1 for d in dropped if d["stage"] == stage["stage"])
    ordinals = sorted(r["ordinal"] for r in kept + dropped)
    assert ordinals == list(range(rep["documents_in"]))  # each document exactly once


def test_exact_duplicate_books_keep_one_copy(prepared, prepare_corpus):
    kept, dropped = rows(prepared["dir"], "kept"), rows(prepared["dir"], "dropped")
    dups = [d for d in dropped if d["reason"] == "exact_duplicate"]
    assert len(dups) == 7  # the sdist holds 7 pairs of identical Milton files
    by_id = {r["id"]: r for r in kept}
    for d in dups:
        assert d["detail"].startswith("survivor ")  # names the kept document by its id, as README says
        survivor = by_id[d["detail"][len("survivor ") :]]
        assert survivor["ordinal"] < d["ordinal"] and survivor["cluster_size"] == 2
        assert os.path.basename(survivor["id"]) != os.path.basename(d["id"])
    assert prepared["report"]["near_duplicate_clusters"]["cluster_size_hist"]["2"] == 7


def test_contaminated_documents_are_dropped_with_the_matched_ngram(prepared, prepare_corpus):
    all_dropped = {d["id"]: d for d in rows(prepared["dir"], "dropped")}
    assert set(prepare_corpus["eval_ids"]) <= set(all_dropped)  # every evaluation problem's document goes
    dropped = [d for d in all_dropped.values() if d["stage"] == "decontaminate"]
    earlier = [i for i in prepare_corpus["eval_ids"] if all_dropped[i]["stage"] != "decontaminate"]
    assert {d["id"] for d in dropped} == set(prepare_corpus["eval_ids"]) - set(earlier)
    assert all(all_dropped[i]["stage"] == "filter" for i in earlier) and len(dropped) >= 15
    questions = [json.loads(line)["question"] for line in open(prepare_corpus["eval"])]
    for d in dropped:
        assert d["reason"] == "champ_eval" and len(d["detail"].split()) == 13
        assert any(d["detail"] in " ".join(words(q)) for q in questions)
    assert prepared["report"]["decontamination_hits"] == {"champ_eval": len(dropped)}
    kept_ids = {r["id"] for r in rows(prepared["dir"], "kept")}
    assert sum(i.startswith("P_") for i in kept_ids) > 150  # the other problems stay


def test_pii_is_masked_in_kept_documents(prepared):
    kept = rows(prepared["dir"], "kept")
    email = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
    assert not any(email.search(r["text"]) for r in kept)
    total = 0
    for r in kept:
        counts = json.loads(r["pii"])
        for kind, n in counts.items():
            assert r["text"].count(f"<{kind}>") >= n
        total += counts.get("EMAIL", 0)
    assert total == prepared["report"]["pii"]["EMAIL"] > 1000


def test_languages_filters_and_report_page(prepared):
    dropped = rows(prepared["dir"], "dropped")
    assert {d["id"] for d in dropped if d["stage"] == "language"} == {"bg0", "bg1", "bg2"}
    assert any(d["stage"] == "filter" for d in dropped)
    page = open(os.path.join(prepared["dir"], "prepare_report.html"), encoding="utf-8").read()
    assert page.count("<svg") >= 5 and "Near-duplicate cluster sizes" in page and "EMAIL" in page
    on_disk = json.load(open(os.path.join(prepared["dir"], "prepare_report.json")))
    assert on_disk["documents_kept"] == prepared["report"]["documents_kept"]


def test_kept_documents_feed_rlpt_build(prepared, tokenizer_dir, tmp_path):
    from rlpt_verl.tasks.rlpt import BuildConfig, run_build

    report = run_build(
        BuildConfig(
            inputs=(os.path.join(prepared["dir"], "kept"),),
            output=str(tmp_path),
            tokenizer=tokenizer_dir,
            id_field="id",
            max_targets_per_doc=1,
            val_docs=2,
            max_prompt_tokens=256,
        ),
        quiet=True,
    )
    assert report["documents"]["read"] == prepared["report"]["documents_kept"]
    assert report["samples"]["train_asr"] > 100


def same_outputs(a, b):
    for family in ("kept", "dropped"):
        names = sorted(os.listdir(os.path.join(a, family)))
        assert names == sorted(os.listdir(os.path.join(b, family)))
        for name in names:
            assert filecmp.cmp(os.path.join(a, family, name), os.path.join(b, family, name), shallow=False), name
    ra, rb = (json.load(open(os.path.join(d, "prepare_report.json"))) for d in (a, b))
    ra.pop("engine"), rb.pop("engine")
    assert ra == rb


def test_engines_and_worker_counts_write_identical_outputs(prepared, prepare_corpus, tmp_path, ray_cluster):
    run_prepare(config(prepare_corpus, tmp_path / "local2", workers=2), quiet=True)
    same_outputs(prepared["dir"], tmp_path / "local2")
    run_prepare(config(prepare_corpus, tmp_path / "ray2", engine="ray", workers=2), quiet=True)
    same_outputs(prepared["dir"], tmp_path / "ray2")


def test_ray_engine_reports_each_shard_as_it_finishes(tmp_path, ray_cluster):
    """Progress is real: shard 0's result arrives while shard 1 is still running (it waits for the test to
    say go, at most 60 s). With results collected only at the end, shard 1 would time out first."""
    from rlpt_verl.data_tools.prepare import PrepareConfig, ray_results

    go = tmp_path / "go"

    def work(cfg, shard):
        import time

        deadline = time.monotonic() + 60
        while shard == 1 and not os.path.exists(go) and time.monotonic() < deadline:
            time.sleep(0.05)
        return {"shard": shard, "go_seen": shard == 0 or os.path.exists(go)}

    cfg = PrepareConfig(inputs=("x",), output=str(tmp_path), engine="ray", workers=2)
    results = ray_results(work, cfg, [0, 1])
    first = next(results)
    go.write_text("")
    rest = list(results)
    assert first == (0, {"shard": 0, "go_seen": True})
    assert rest == [(1, {"shard": 1, "go_seen": True})]


def rlpt(*args, **kw):
    return subprocess.run([sys.executable, "-m", "rlpt_verl.cli", *args], capture_output=True, text=True, **kw)


def test_an_interrupted_run_resumes_to_identical_output(prepare_corpus, tmp_path):
    args = [
        prepare_corpus["dir"],
        "--id-field",
        "id",
        "--shard-docs",
        "8",
        "--decontaminate",
        prepare_corpus["eval"],
        "--quiet",
        "--keep-work",  # to compare the finished shards' files after the resumed run
    ]
    full = tmp_path / "full"
    assert rlpt("prepare", *args, "-o", str(full)).returncode == 0
    out = tmp_path / "resumed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rlpt_verl.cli", "prepare", *args, "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    marker = out / "work" / "stage1" / "part-00010.json"
    deadline = time.time() + 300
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(glob.glob(str(out / "work" / "stage1" / "part-*.json")))
    assert 10 < len(done) < 62 and not (out / "prepare_report.json").exists(), "the kill must land mid-run"
    before = {f: os.stat(f).st_mtime_ns for f in done}
    p = rlpt("prepare", *args, "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert {f: os.stat(f).st_mtime_ns for f in done} == before  # finished shards were not redone
    same_outputs(full, out)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--decontaminate", "/nonexistent/eval.jsonl"], "evaluation set not found: /nonexistent/eval.jsonl"),
        (["--quality-url", "http://127.0.0.1:9/v1"], "needs both --quality-url and --quality-model"),
        (["--dedup-threshold", "1.5"], "--dedup-threshold must be between 0 and 1"),
        (["--shard-docs", "0"], "--shard-docs 0: must be at least 1"),
        (["--num-perm", "0"], "--num-perm 0: must be at least 2"),
        (["--shingle-words", "0"], "--shingle-words 0: must be at least 1"),
        (["--max-doc-chars", "-1"], "--max-doc-chars -1: must be at least 1"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(prepare_corpus, tmp_path, args, message):
    p = rlpt("prepare", prepare_corpus["dir"], "-o", str(tmp_path / "o"), "--quiet", *args)
    assert p.returncode == 2, p.stderr
    assert message in p.stderr and "Traceback" not in p.stderr


def test_a_changed_input_is_redone_not_served_from_the_earlier_run(prepare_corpus, tmp_path):
    corpus = tmp_path / "c.jsonl"
    docs = [
        json.loads(x) for x in open(os.path.join(prepare_corpus["dir"], "mixed.jsonl")) if x.startswith('{"id": "news')
    ]
    docs = docs[:12]
    corpus.write_text("".join(json.dumps(d) + "\n" for d in docs))
    args = [str(corpus), "-o", str(tmp_path / "out"), "--quiet", "--min-words", "5", "--keep-work"]
    assert rlpt("prepare", *args).returncode == 0
    assert (tmp_path / "out" / "work" / "input").is_dir()  # --keep-work
    first = json.load(open(tmp_path / "out" / "prepare_report.json"))["documents_in"]
    corpus.write_text("".join(json.dumps(d) + "\n" for d in docs[:5]))  # the same path, other content
    p = rlpt("prepare", *args)
    assert p.returncode == 0 and "inputs changed since the earlier run" in p.stderr
    assert (first, json.load(open(tmp_path / "out" / "prepare_report.json"))["documents_in"]) == (len(docs), 5)


def test_work_is_removed_after_a_complete_run(prepared):
    assert sorted(os.listdir(os.path.join(prepared["dir"], "work"))) == ["quality_cache", "settings.json"]


def test_rerun_with_other_settings_is_refused(prepared, prepare_corpus):
    p = rlpt("prepare", prepare_corpus["dir"], "-o", prepared["dir"], "--id-field", "id", "--no-pii", "--quiet")
    assert p.returncode == 2 and "holds a run with other settings (" in p.stderr
    assert "decontam: on -> off" in p.stderr and "pii: True -> False" in p.stderr


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "biggest drop is read:missing_text_field (20 of 20); the records have no field 'text': set --text-field"),
        (["--text-field", "body", "--min-words", "100000"], "biggest drop is filter:too_few_words (20 of 20)"),
    ],
)
def test_keeping_nothing_is_an_error_naming_the_biggest_reason(tmp_path, extra, message):
    from pydoc_data.topics import topics

    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"body": topics[k]}) + "\n" for k in sorted(topics)[:20]))
    p = rlpt("prepare", str(corpus), "-o", str(tmp_path / "out"), "--quiet", *extra)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert message in p.stderr and "Traceback" not in p.stderr
    assert os.path.exists(tmp_path / "out" / "prepare_report.json")  # what was dropped, and why, stays readable


def test_ctrl_c_stops_prepare_with_workers_at_once_and_nothing_is_half_written(prepare_corpus, tmp_path):
    out = tmp_path / "out"
    proc = start_interruptible(
        ["prepare", prepare_corpus["dir"], "-o", str(out), "--id-field", "id"]
        + ["--shard-docs", "8", "--workers", "2", "--quiet"]
    )
    deadline = time.time() + 300
    while not glob.glob(str(out / "work" / "stage1" / "part-*.json")) and time.time() < deadline:
        time.sleep(0.05)  # the clean phase is under way on the pool
    assert proc.poll() is None, proc.communicate()
    err, seconds = ctrl_c(proc)
    assert proc.returncode == 130 and seconds < 30, err
    assert "Traceback" not in err
    assert not [f for f in glob.glob(str(out / "**" / "*"), recursive=True) if f.endswith(".tmp")]
    assert not (out.parent / "out.rlpt-lock").exists()
