"""`rlpt build` on real text with a real tokenizer, loaded by verl's own RLHFDataset."""

import filecmp
import json
import os
import re
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

from rlpt_verl.prompts import ASR_TEMPLATE, MSR_TEMPLATE, asr_prompt, msr_prompt
from rlpt_verl.segment import join_segments, split_sentences
from rlpt_verl.tasks.rlpt import BuildConfig, run_build

from ...conftest import BUDGET, SPEC

POOLS = ("train_asr", "train_msr", "val_asr", "val_msr")


def rows(built, pool):
    return pq.read_table(os.path.join(built["dir"], f"{pool}.parquet")).to_pylist()


def verl_dataset(files, tokenizer, max_prompt_length, **extra):
    from verl.utils.dataset.rl_dataset import RLHFDataset

    cfg = OmegaConf.create(
        {"max_prompt_length": max_prompt_length, "filter_overlong_prompts": True, "prompt_key": "prompt", **extra}
    )
    return RLHFDataset(data_files=files, tokenizer=tokenizer, config=cfg)


def test_rows_load_with_verl_and_overlong_filter_drops_nothing(built, tokenizer_dir):
    from torch.utils.data import DataLoader
    from verl.utils.dataset.rl_dataset import collate_fn

    from rlpt_verl.tasks.prompt_meter import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    for pool in POOLS:
        path = os.path.join(built["dir"], f"{pool}.parquet")
        n = pq.ParquetFile(path).metadata.num_rows
        assert n > 0, pool
        ds = verl_dataset([path], tok, BUDGET)
        assert len(ds) == n, f"verl's overlong filter dropped {n - len(ds)} rows of {pool}"
        batch = next(iter(DataLoader(ds, batch_size=4, collate_fn=collate_fn)))
        assert list(batch["data_source"]) == [f"rlpt_{pool.split('_')[1]}"] * 4
        assert batch["reward_model"][0]["ground_truth"]
        assert "index" in batch["extra_info"][0]
    # One token less of budget, and verl would drop rows: the build really used the budget it was given.
    tight = verl_dataset([os.path.join(built["dir"], "train_asr.parquet")], tok, BUDGET - 8)
    assert len(tight) < pq.ParquetFile(os.path.join(built["dir"], "train_asr.parquet")).metadata.num_rows


def test_prompt_tokens_equal_verls_measure(built, tokenizer_dir):
    from verl.utils.tokenizer.tokenizer import normalize_token_ids

    from rlpt_verl.tasks.prompt_meter import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    for r in rows(built, "train_msr")[:40] + rows(built, "val_asr")[:40]:
        ids = tok.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=True)
        assert len(normalize_token_ids(ids)) == r["extra_info"]["prompt_tokens"] <= BUDGET


def _spec_blocks():
    text = open(SPEC, encoding="utf-8").read()
    return re.findall(r"```\n(.*?)\n```", text, flags=re.S)


# SHA-256 of SPEC §2's template blocks, so a drifted template fails even where ../shared is absent.
SPEC_SHA256 = {
    "ASR": "e524849dc456942045e2cabb3ec47fa97d5939f472eaa0923371f83ffc91d159",
    "MSR": "27663d4aad0f18619b4f9f1b8c5c06e91ab9eae8aace39e0d530813894b1bd1a",
}


def test_templates_are_the_spec_byte_for_byte():
    import hashlib

    assert hashlib.sha256(ASR_TEMPLATE.encode()).hexdigest() == SPEC_SHA256["ASR"]
    assert hashlib.sha256(MSR_TEMPLATE.encode()).hexdigest() == SPEC_SHA256["MSR"]
    if os.path.exists(SPEC):
        blocks = _spec_blocks()
        assert ASR_TEMPLATE in blocks
        assert MSR_TEMPLATE in blocks
        assert {hashlib.sha256(b.encode()).hexdigest() for b in blocks} >= set(SPEC_SHA256.values())


def test_prompts_are_the_templates_with_document_text(built, pydoc_jsonl):
    docs = {json.loads(line)["id"]: json.loads(line)["text"] for line in open(pydoc_jsonl)}
    by_doc_id = {f"{pydoc_jsonl}:{i + 1}": text for i, text in enumerate(docs.values())}
    checked = 0
    for pool in POOLS:
        for r in rows(built, pool)[:60]:
            e = r["extra_info"]
            segs = split_sentences(by_doc_id[e["doc_id"]])
            j, start = e["segment_index"], e["context_cut_segments"]
            assert 1 <= j <= len(segs) - 2  # the paper's i = 2..n-1
            assert e["target"] == segs[j].text and len(e["target"]) >= 20
            assert e["next_segment"] == segs[j + 1].text
            context = join_segments(segs[start:j])
            assert context and e["context_truncated"] == (start > 0)
            assert e["context_cut_chars"] == len(join_segments(segs[:start]))
            expected = asr_prompt(context) if e["task"] == "asr" else msr_prompt(context, segs[j + 1].text)
            assert r["prompt"] == [{"role": "user", "content": expected}]
            k = e["reference_segments"]  # 3 (ASR) or 1 (MSR), fewer at the end or where the token cap cut it
            assert 1 <= k <= min(3 if e["task"] == "asr" else 1, len(segs) - j)
            assert r["reward_model"]["ground_truth"] == join_segments(segs[j : j + k])
            assert r["data_source"] == f"rlpt_{e['task']}" and pool.endswith(e["task"])
            checked += 1
    assert checked == 240


def test_context_is_cut_only_as_far_as_needed(built, tokenizer_dir):
    """Adding back the one segment before the cut must overflow the budget."""
    from rlpt_verl.tasks.prompt_meter import PromptMeter, load_tokenizer

    meter = PromptMeter(load_tokenizer(tokenizer_dir))
    truncated = [r for r in rows(built, "train_asr") if r["extra_info"]["context_truncated"]][:30]
    assert truncated, "the 512-token budget should truncate some pydoc contexts"
    lines = {}
    for r in truncated:
        e = r["extra_info"]
        if e["doc_id"] not in lines:
            path, line_no = e["doc_id"].rsplit(":", 1)
            with open(path) as f:
                lines[e["doc_id"]] = json.loads(f.readlines()[int(line_no) - 1])["text"]
        segs = split_sentences(lines[e["doc_id"]])
        longer = asr_prompt(join_segments(segs[e["context_cut_segments"] - 1 : e["segment_index"]]))
        assert meter.count_prompts([longer])[0] > BUDGET


def test_split_by_document_and_report(built, pydoc_jsonl):
    train_docs = {r["extra_info"]["doc_id"] for p in ("train_asr", "train_msr") for r in rows(built, p)}
    val_docs = {r["extra_info"]["doc_id"] for p in ("val_asr", "val_msr") for r in rows(built, p)}
    assert len(val_docs) == 6 and not train_docs & val_docs
    report = json.load(open(os.path.join(built["dir"], "build_report.json")))
    assert report["samples"] == {
        p: pq.ParquetFile(os.path.join(built["dir"], f"{p}.parquet")).metadata.num_rows for p in POOLS
    }
    assert (
        report["documents"]["read"] == 79
        and report["documents"]["used"] + sum(report["documents"]["skipped_at_build"].values()) == 79
    )
    assert report["prompt_tokens"]["p100"] <= BUDGET
    # both tasks come from the same seeded sample of at most 12 targets per document, less counted drops
    from rlpt_verl.tasks.targets import doc_rng, eligible_targets, sample_targets

    texts = {f"{pydoc_jsonl}:{i + 1}": json.loads(line)["text"] for i, line in enumerate(open(pydoc_jsonl))}
    sampled = set()
    for doc_id, text in texts.items():
        js = sample_targets(eligible_targets(split_sentences(text), 20), 12, doc_rng(3, text))
        sampled |= {(doc_id, j) for j in js}
    drops = report["samples_dropped"]
    for task in ("asr", "msr"):
        got = set()
        for p in (f"train_{task}", f"val_{task}"):
            got |= {(r["extra_info"]["doc_id"], r["extra_info"]["segment_index"]) for r in rows(built, p)}
        assert got <= sampled
        assert len(sampled - got) == drops.get(f"{task}_prompt_too_long", 0) + drops.get(f"{task}_target_too_long", 0)
    indices = [r["extra_info"]["index"] for p in POOLS for r in rows(built, p)]
    assert len(set(indices)) == len(indices)


def test_deterministic_and_workers_identical(built, tmp_path):
    cfg = built["cfg"]
    again = tmp_path / "again"
    parallel = tmp_path / "parallel"
    run_build(BuildConfig(**{**cfg.__dict__, "output": str(again)}), quiet=True)
    run_build(BuildConfig(**{**cfg.__dict__, "output": str(parallel), "workers": 2}), quiet=True)
    for name in [f"{p}.parquet" for p in POOLS]:
        assert filecmp.cmp(os.path.join(built["dir"], name), again / name, shallow=False), name
        assert filecmp.cmp(os.path.join(built["dir"], name), parallel / name, shallow=False), name
    reports = [json.load(open(os.path.join(d, "build_report.json"))) for d in (built["dir"], again, parallel)]
    for r in reports:
        r["config"].pop("output"), r["config"].pop("workers")
    assert reports[0] == reports[1] == reports[2]
    other_seed = tmp_path / "seed"
    run_build(BuildConfig(**{**cfg.__dict__, "output": str(other_seed), "seed": 4}), quiet=True)
    assert not filecmp.cmp(os.path.join(built["dir"], "val_asr.parquet"), other_seed / "val_asr.parquet", shallow=False)


def test_judge_references_are_capped_by_tokens(tmp_path, tokenizer_dir):
    """A reference must fit the judge: an unpunctuated 389k-character "sentence" is never a target, and a
    reference loses trailing segments (never s_i) to stay within --max-reference-tokens."""
    from pydoc_data.topics import topics

    from rlpt_verl.tasks.prompt_meter import load_tokenizer

    words = " ".join(topics["assignment"].split())
    monster = " ".join([words.replace(".", "")] * (389_000 // len(words) + 1))[:389_000]
    short = "The module loads its settings first. It then opens the log file for writing."
    doc = f"{short} {monster}. {short} Nothing else happens after that point in the program. The end comes here."
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"text": doc}) + "\n")
    out = tmp_path / "out"
    cfg = BuildConfig(
        inputs=(str(corpus),),
        output=str(out),
        tokenizer=tokenizer_dir,
        max_prompt_tokens=100_000,
        val_docs=0,
        max_reference_tokens=64,
    )
    report = run_build(cfg, quiet=True)
    assert report["samples_dropped"]["asr_target_too_long"] == 1 == report["samples_dropped"]["msr_target_too_long"]
    tok = load_tokenizer(tokenizer_dir)
    refs = [r["reward_model"]["ground_truth"] for p in ("train_asr", "train_msr") for r in rows({"dir": out}, p)]
    assert refs and all(len(tok(ref)["input_ids"]) <= 64 + 2 for ref in refs)
    assert not any(len(ref) > 10_000 for ref in refs)
    capped = [r for r in rows({"dir": out}, "train_asr") if r["extra_info"]["reference_segments"] < 3]
    assert report["references_capped"]["asr"] >= 1 and capped


def test_validation_rows_are_capped(tmp_path, built):
    """verl sends all of validation at once: --val-max-rows bounds it (half per task), drops are counted."""
    cfg = BuildConfig(**{**built["cfg"].__dict__, "output": str(tmp_path / "capped"), "val_max_rows": 10})
    report = run_build(cfg, quiet=True)
    full = built["report"]
    assert report["samples"]["val_asr"] == 5 == report["samples"]["val_msr"]
    assert report["samples"]["train_asr"] == full["samples"]["train_asr"]  # training is untouched
    for task in ("asr", "msr"):
        over = report["samples_dropped"][f"{task}_val_over_max_rows"]
        assert over == full["samples"][f"val_{task}"] - 5 > 0
    skipped = report["documents"]["skipped_at_build"]  # documents whose rows did not fit validation: named so
    assert skipped.get("val_over_max_rows", 0) > 0 and "all_prompts_too_long" not in skipped, skipped
    assert (
        report["documents"]["used_per_split"]["val"] + skipped["val_over_max_rows"]
        == (full["documents"]["used_per_split"]["val"])
    )


def rlpt(*args, **kw):
    return subprocess.run([sys.executable, "-m", "rlpt_verl.cli", *args], capture_output=True, text=True, **kw)


def test_dirty_corpus_is_skipped_and_counted(tmp_path, tokenizer_dir):
    good = "The first sentence is here. The second sentence follows it. The third sentence closes the text."
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    with open(folder / "a.jsonl", "wb") as f:
        f.write(json.dumps({"text": good}).encode() + b"\n")
        f.write(b'{"text": "broken json\n')
        f.write(b'{"text": "bad utf8 \xff\xfe here. Second one here. Third."}\n')
        f.write(json.dumps({"text": ""}).encode() + b"\n")
        f.write(json.dumps({"text": "Only one sentence here."}).encode() + b"\n")
        f.write(json.dumps({"body": good}).encode() + b"\n")
        f.write(json.dumps({"text": 42}).encode() + b"\n")
        f.write(json.dumps({"text": good + " " + "Big sentence here. " * 400}).encode() + b"\n")
        for i in range(3):
            f.write(json.dumps({"text": good.replace("first", f"doc {i}")}).encode() + b"\n")
    (folder / "sub" / "b.txt").write_text(good)
    (folder / "sub" / "blob.txt").write_bytes(b"\x00\x01binary\x00")
    (folder / "sub" / "image.png").write_bytes(b"\x89PNG")
    out = tmp_path / "out"
    p = rlpt(
        "build",
        str(folder),
        "-o",
        str(out),
        "--tokenizer",
        tokenizer_dir,
        "--val-docs",
        "1",
        "--max-doc-chars",
        "4000",
        "--min-target-chars",
        "5",
        "--quiet",
    )
    assert p.returncode == 0, p.stderr
    report = json.load(open(out / "build_report.json"))
    assert report["documents"]["skipped_at_read"] == {
        "empty": 1,
        "invalid_utf8": 1,
        "malformed_json": 1,
        "missing_text_field": 1,
        "text_not_string": 1,
        "too_large": 1,
    }
    assert report["documents"]["skipped_at_build"] == {"too_few_sentences": 1}
    assert report["files_skipped"] == {"binary_file": 1, "unsupported_format": 1}
    assert report["documents"]["used"] == 5 and report["documents"]["read"] == 12
    assert "documents skipped: 7" in p.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["/nonexistent/corpus.jsonl"], "input path not found: /nonexistent/corpus.jsonl"),
        (["{tmp}/corpus.csv"], "unknown input format"),
        (["{tmp}/ok.jsonl", "--tokenizer", "no-such-org/no-such-model"], "cannot load tokenizer 'no-such-org/no-such"),
        (["{tmp}/ok.parquet", "--text-field", "body"], "no column 'body'"),
        (["{tmp}/ok.jsonl", "--max-prompt-tokens", "0"], "--max-prompt-tokens must be positive"),
        (["{tmp}/ok.jsonl", "--val-docs", "5"], "all 1 usable documents went to validation (--val-docs 5)"),
        (["{tmp}/ok.jsonl", "--msr-lambda", "0.3"], "add +data.rlpt.msr_lambda=0.3 to the training command"),
        (["{tmp}/ok.jsonl", "{tmp}/./ok.jsonl"], "is given twice"),
        (["{tmp}"], "is inside the input folder"),  # -o {tmp}/out
        (["{tmp}/ok.jsonl", "--max-doc-chars", "0"], "--max-doc-chars 0: must be at least 1"),
        (["{tmp}/ok.jsonl", "--id-field", "doc_id"], "the records have no field 'doc_id': set --id-field"),
        (["{tmp}/ok.jsonl", "--max-doc-chars", "10"], "documents are longer than --max-doc-chars 10: raise it"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(tmp_path, tokenizer_dir, args, message):
    import pyarrow as pa

    good = "The first sentence is here. The second sentence follows it. The third sentence closes the text."
    (tmp_path / "corpus.csv").write_text("text\nhello\n")
    (tmp_path / "ok.jsonl").write_text(json.dumps({"text": good}) + "\n")
    pq.write_table(pa.table({"text": [good]}), tmp_path / "ok.parquet")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--tokenizer" not in args:
        args += ["--tokenizer", tokenizer_dir]
    p = rlpt("build", *args, "-o", str(tmp_path / "out"), env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert message in p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_validation_share_scales_with_a_small_corpus(tmp_path, pydoc_jsonl, tokenizer_dir):
    """20 documents: the default holds out 2 (10%), not 100 (which left nothing to train on)."""
    docs = open(pydoc_jsonl).read().splitlines()[:20]
    (tmp_path / "small.jsonl").write_text("\n".join(docs) + "\n")
    p = rlpt("build", str(tmp_path / "small.jsonl"), "-o", str(tmp_path / "out"), "--tokenizer", tokenizer_dir)
    assert p.returncode == 0, p.stderr
    report = json.load(open(tmp_path / "out" / "build_report.json"))
    assert report["documents"]["used_per_split"]["val"] == 2
    assert report["documents"]["used_per_split"]["train"] >= 15


def test_a_build_with_empty_validation_files_says_so(tmp_path, tokenizer_dir):
    good = "The first sentence is here. The second sentence follows it. The third sentence closes the text."
    (tmp_path / "one.jsonl").write_text(json.dumps({"text": good}) + "\n")
    p = rlpt("build", str(tmp_path / "one.jsonl"), "-o", str(tmp_path / "out"), "--tokenizer", tokenizer_dir, "--quiet")
    assert p.returncode == 0, p.stderr
    report = json.load(open(tmp_path / "out" / "build_report.json"))
    assert report["samples"]["val_asr"] == 0 == report["samples"]["val_msr"]
    assert "warning: val_asr.parquet, val_msr.parquet hold 0 rows" in p.stdout and "--val-docs" in p.stdout
