"""The LM quality stage against a real OpenAI-compatible server (SmolLM2 behind `transformers serve`)."""

import json

from rlpt_verl.data_tools.prepare import PrepareConfig, run_prepare
from rlpt_verl.data_tools.quality import QualityConfig, QualityRater


def texts():
    from pydoc_data.topics import topics

    return [topics[k][:600] for k in sorted(topics)[:3]] + ["buy buy buy click here now now now"]


def test_scores_are_cached_so_reruns_do_not_pay(judge_server, tmp_path):
    cfg = QualityConfig(base_url=judge_server.url, model=judge_server.model, concurrency=2, max_chars=600)
    before = judge_server.request_count()
    first = QualityRater(cfg, str(tmp_path / "cache"), "a")
    scores = first.rate(texts())
    sent = judge_server.request_count() - before
    assert sent == first.requests >= len(texts())  # one request per document, a second if unparsable
    assert all(s is None or 0 <= s <= 5 for s in scores)
    again = QualityRater(cfg, str(tmp_path / "cache"), "a")  # the same shard rerun in another process
    rerun = again.rate(list(reversed(texts())))
    assert [s for s in rerun if s is not None] == [s for s in reversed(scores) if s is not None]
    asked_again = sum(s is None for s in scores)  # non-answers are not cached: asked again
    assert (again.requests == 0) == (asked_again == 0)
    other = QualityRater(cfg, str(tmp_path / "cache"), "b")  # another shard reads only its own file
    assert other.cache == {}


def test_dead_rater_is_an_error_not_a_kept_document(tmp_path, model_dir):
    """A rater that stops answering ends the run with its URL; nothing is kept on a non-answer."""
    import pytest

    from rlpt_verl.errors import JobError
    from rlpt_verl.tools.local_judge import LocalJudgeServer

    dead = LocalJudgeServer(model_dir)  # never started
    cfg = QualityConfig(base_url=dead.url, model="m", timeout_s=2)
    rater = QualityRater(cfg, str(tmp_path / "cache"), "a")
    rater.client = type(rater.client)(
        type(rater.client.settings)(**{**rater.client.settings.__dict__, "max_retries": 1, "backoff_base_s": 0.05})
    )
    with pytest.raises(JobError, match=rf"quality rater at http://127\.0\.0\.1:{dead.port}/v1/chat/completions"):
        rater.rate(texts())
    assert not open(rater.cache_path).read() if (tmp_path / "cache" / "a.jsonl").exists() else True
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts()))
    out = tmp_path / "out"
    import subprocess
    import sys

    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlpt_verl.cli",
            "prepare",
            str(corpus),
            "-o",
            str(out),
            "--no-filters",
            "--quality-url",
            dead.url,
            "--quality-model",
            "m",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert f"quality rater at http://127.0.0.1:{dead.port}/v1/chat/completions did not answer" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and not (out / "kept").exists()


def test_quality_stage_in_prepare(judge_server, tmp_path):
    corpus = tmp_path / "c.jsonl"
    with open(corpus, "w") as f:
        for i, t in enumerate(texts()):
            f.write(json.dumps({"id": f"d{i}", "text": t}) + "\n")
    cfg = PrepareConfig(
        inputs=(str(corpus),),
        output=str(tmp_path / "out"),
        id_field="id",
        filters=None,
        quality=QualityConfig(base_url=judge_server.url, model=judge_server.model, threshold=3, max_chars=600),
    )
    report = run_prepare(cfg, quiet=True)
    assert report["accounting_ok"] and report["documents_in"] == 4
    assert 4 <= report["quality"]["requests"] <= 8  # one per document, a second when unparsable
    import pyarrow.parquet as pq

    kept = pq.read_table(tmp_path / "out" / "kept" / "part-00000.parquet").to_pylist()
    dropped = pq.read_table(tmp_path / "out" / "dropped" / "part-00000.parquet").to_pylist()
    assert len(kept) + len(dropped) == 4
    assert all(r["quality_score"] is None or r["quality_score"] >= 3 for r in kept)
    assert sum(r["quality_score"] is None for r in kept) == report["quality"]["unparsed_kept"]
    assert all(d["stage"] == "quality" and int(d["detail"]) < 3 for d in dropped)
