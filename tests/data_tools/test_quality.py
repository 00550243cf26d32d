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
    assert sent == first.requests == len(texts())  # one request per document
    assert all(s is None or 0 <= s <= 5 for s in scores)
    again = QualityRater(cfg, str(tmp_path / "cache"), "b")  # another shard, another process: same cache
    assert again.rate(list(reversed(texts()))) == list(reversed(scores))
    assert again.requests == 0 and judge_server.request_count() - before == sent


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
    assert report["quality"]["requests"] == 4
    import pyarrow.parquet as pq

    kept = pq.read_table(tmp_path / "out" / "kept" / "part-00000.parquet").to_pylist()
    dropped = pq.read_table(tmp_path / "out" / "dropped" / "part-00000.parquet").to_pylist()
    assert len(kept) + len(dropped) == 4
    assert all(r["quality_score"] is None or r["quality_score"] >= 3 for r in kept)
    assert sum(r["quality_score"] is None for r in kept) == report["quality"]["unparsed_kept"]
    assert all(d["stage"] == "quality" and int(d["detail"]) < 3 for d in dropped)
