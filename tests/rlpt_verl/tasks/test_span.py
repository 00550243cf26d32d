"""`rlpt build-span` on a real `rlpt build` (pydoc text, SmolLM2 tokenizer), loaded by verl's own RLHFDataset."""

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from rlpt_verl.prompts import SPAN_TEMPLATE
from rlpt_verl.tasks.span import MASK, SpanBuildConfig, run_build_span


@pytest.fixture(scope="module")
def span_built(built, tokenizer_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("span"))
    cfg = SpanBuildConfig(rlpt_data=built["dir"], output=out, tokenizer=tokenizer_dir, max_prompt_tokens=600)
    return {"dir": out, "report": run_build_span(cfg, quiet=True), "cfg": cfg}


def test_span_rows_come_from_the_msr_rows_and_load_in_verl(span_built, built, tokenizer_dir):
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset

    from rlpt_verl.tasks.prompt_meter import load_tokenizer

    report = span_built["report"]
    msr = {s: pq.read_table(os.path.join(built["dir"], f"{s}_msr.parquet")).to_pylist() for s in ("train", "val")}
    for split in ("train", "val"):
        rows = pq.read_table(os.path.join(span_built["dir"], f"{split}_span.parquet")).to_pylist()
        assert len(rows) == report["rows"][split] > 0
        assert report["rows_read"][split] == len(msr[split])  # every MSR row read; the rest dropped by reason
        targets = {(r["extra_info"]["doc_id"], r["extra_info"]["segment_index"]): r for r in msr[split]}
        for row in rows:
            info = row["extra_info"]
            source = targets[(info["doc_id"], info["segment_index"])]  # same document, same split
            span = row["reward_model"]["ground_truth"]
            target = source["extra_info"]["target"]
            assert target[info["span_start"] : info["span_end"]] == span and span.strip() == span
            assert 2 <= len(span.split()) <= 4 and len(span.split()) < len(target.split())
            content = row["prompt"][0]["content"]
            assert content.count(MASK) == SPAN_TEMPLATE.count(MASK) + 1  # the template's own mentions, and one mask
            masked = target[: info["span_start"]] + MASK + target[info["span_end"] :]
            assert masked in content and source["extra_info"]["next_segment"] in content
            material = content.split("\n\n## Task ##")[0]  # the answer is not shown elsewhere in the material
            assert span not in material.replace(masked, "") or span in source["prompt"][0]["content"]
            assert row["data_source"] == "rlpt_span" and info["prompt_tokens"] <= 600
    dropped = sum(report["dropped"].values())
    assert sum(report["rows_read"].values()) == sum(report["rows"].values()) + dropped
    tok = load_tokenizer(tokenizer_dir)
    cfg = OmegaConf.create({"max_prompt_length": 600, "filter_overlong_prompts": True, "prompt_key": "prompt"})
    ds = RLHFDataset(data_files=[os.path.join(span_built["dir"], "train_span.parquet")], tokenizer=tok, config=cfg)
    assert len(ds) == report["rows"]["train"]  # verl's own overlong filter keeps every row
    assert ds[0]["reward_model"]["ground_truth"]


def test_same_seed_same_spans_other_seed_other_spans(span_built, built, tokenizer_dir, tmp_path):
    again = run_build_span(
        SpanBuildConfig(
            rlpt_data=built["dir"], output=str(tmp_path / "a"), tokenizer=tokenizer_dir, max_prompt_tokens=600
        ),
        quiet=True,
    )
    run_build_span(
        SpanBuildConfig(
            rlpt_data=built["dir"], output=str(tmp_path / "b"), tokenizer=tokenizer_dir, max_prompt_tokens=600, seed=7
        ),
        quiet=True,
    )

    def spans(d):
        return pq.read_table(os.path.join(d, "train_span.parquet")).column("reward_model").to_pylist()

    assert again["rows"] == span_built["report"]["rows"]
    assert spans(tmp_path / "a") == spans(span_built["dir"])
    assert spans(tmp_path / "b") != spans(span_built["dir"])


def test_spans_follow_the_text_not_the_file_name(built, tokenizer_dir, tmp_path):
    """A copy of the build under another folder and file name gives the same spans (seeded by content)."""
    import shutil

    copy = tmp_path / "elsewhere"
    shutil.copytree(built["dir"], copy)
    table = pq.read_table(copy / "train_msr.parquet").to_pylist()
    for row in table:
        row["extra_info"]["doc_id"], row["extra_info"]["source"] = "renamed.jsonl:0", "renamed.jsonl"
    pq.write_table(pq.read_table(copy / "train_msr.parquet").from_pylist(table), copy / "train_msr.parquet")
    a, b = tmp_path / "a", tmp_path / "b"
    for src, out in ((built["dir"], a), (str(copy), b)):
        run_build_span(
            SpanBuildConfig(rlpt_data=src, output=str(out), tokenizer=tokenizer_dir, max_prompt_tokens=600), quiet=True
        )
    spans = [pq.read_table(d / "train_span.parquet").column("reward_model").to_pylist() for d in (a, b)]
    assert spans[0] == spans[1]


def test_build_span_mistakes_are_one_line(tmp_path, built, tokenizer_dir):
    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "rlpt_verl.cli", "build-span", *args], capture_output=True, text=True, timeout=300
        )

    p = run(str(tmp_path), "-o", str(tmp_path / "out"), "--tokenizer", tokenizer_dir)
    assert p.returncode == 2 and "has no train_msr.parquet: give the output folder of `rlpt build`" in p.stderr
    p = run(
        built["dir"],
        "-o",
        str(tmp_path / "o"),
        "--tokenizer",
        tokenizer_dir,
        "--min-span-words",
        "5",
        "--max-span-words",
        "3",
    )
    assert p.returncode == 2 and "--min-span-words 5 is more than --max-span-words 3" in p.stderr
    assert "Traceback" not in p.stderr and not (tmp_path / "o").exists()
    p = run(built["dir"], "-o", str(tmp_path / "ok"), "--tokenizer", tokenizer_dir, "--max-prompt-tokens", "600")
    assert p.returncode == 0, p.stderr[-2000:]
    report = json.load(open(tmp_path / "ok" / "span_report.json"))
    assert f"span tasks: {report['rows']['train']} train" in p.stdout and "span_report.json" in p.stdout
