"""`rlpt build-rpt` on real math text (champ-dataset) with SmolLM2 as proxy and policy, loaded by verl."""

import filecmp
import json
import math
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

from rlpt_verl.prompts import rpt_prompt
from rlpt_verl.tasks.prompt_meter import PromptMeter, load_tokenizer
from rlpt_verl.tasks.rpt import VAL_SPLITS, RPTBuildConfig, _ends, run_build_rpt

from ...conftest import RPT_BUDGET

FILES = ("train", "val_easy", "val_medium", "val_hard")


def rows(built, name):
    return pq.read_table(os.path.join(built["dir"], f"{name}.parquet")).to_pylist()


def documents(champ_jsonl) -> dict:
    return {f"{champ_jsonl}:{i + 1}": json.loads(line)["text"] for i, line in enumerate(open(champ_jsonl))}


def test_rows_load_with_verls_rlhf_dataset(rpt_built, model_dir):
    from torch.utils.data import DataLoader
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    tok = load_tokenizer(model_dir)
    cfg = OmegaConf.create({"max_prompt_length": RPT_BUDGET, "filter_overlong_prompts": True, "prompt_key": "prompt"})
    for name in FILES:
        path = os.path.join(rpt_built["dir"], f"{name}.parquet")
        n = pq.ParquetFile(path).metadata.num_rows
        assert n > 0, name
        ds = RLHFDataset(data_files=[path], tokenizer=tok, config=cfg)
        assert len(ds) == n, f"verl's overlong filter dropped rows of {name}"
        batch = next(iter(DataLoader(ds, batch_size=2, collate_fn=collate_fn)))
        source = "rpt" if name == "train" else f"rpt_{name[4:]}"
        assert list(batch["data_source"]) == [source] * 2
        truth = batch["reward_model"][0]
        assert truth["ground_truth"] and len(truth["token_byte_ends"]) >= 1


def test_prompts_contexts_and_ground_truth_come_from_the_document(rpt_built, champ_jsonl, model_dir):
    from verl.utils.tokenizer.tokenizer import normalize_token_ids

    docs = documents(champ_jsonl)
    tok = load_tokenizer(model_dir)
    meter = PromptMeter(tok)
    cut = 0
    for r in rows(rpt_built, "train") + rows(rpt_built, "val_easy"):
        e, text = r["extra_info"], docs[r["extra_info"]["doc_id"]]
        char = e["char_offset"]
        context = text[e["context_cut_chars"] : char]
        assert r["prompt"][0]["content"] == rpt_prompt(context)
        ids = normalize_token_ids(tok.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=True))
        assert len(ids) == e["prompt_tokens"] <= RPT_BUDGET
        # the truth and its boundaries are the policy's own tokens of the document, from the position on
        truth = r["reward_model"]
        doc_ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(doc_ids[: e["policy_position"]]) == text[:char]
        pieces = [tok.decode(doc_ids[: e["policy_position"] + k + 1]) for k in range(len(truth["token_byte_ends"]))]
        assert [len(p.encode()) - len(text[:char].encode()) for p in pieces] == truth["token_byte_ends"]
        assert truth["ground_truth"] == text[char : char + len(pieces[-1]) - char]
        assert truth["ground_truth"].startswith(e["next_token"])
        if e["context_truncated"]:
            cut += 1
            # one more policy token of context would overflow: cut only as far as needed
            prev = max([0] + [end for end in _ends(tok, text) if end < e["context_cut_chars"]])
            assert meter.count_prompts([rpt_prompt(text[prev:char])])[0] > RPT_BUDGET
    assert cut > 0, "a 192-token budget should truncate some contexts"


def test_positions_follow_entropy_thresholds_and_the_split_is_by_document(rpt_built):
    threshold = rpt_built["cfg"].entropy_threshold
    train = rows(rpt_built, "train")
    assert all(r["extra_info"]["entropy"] > threshold for r in train)
    val = {name: rows(rpt_built, f"val_{name}") for name, _ in VAL_SPLITS}
    for name, th in VAL_SPLITS:
        assert all(r["extra_info"]["entropy"] > th for r in val[name])
    # nested: every hard position is also medium and easy
    key = lambda r: (r["extra_info"]["doc_id"], r["extra_info"]["char_offset"])  # noqa: E731
    easy, medium, hard = ({key(r) for r in val[n]} for n, _ in VAL_SPLITS)
    assert hard <= medium <= easy and len(easy) > len(hard) > 0
    assert not {k[0] for k in easy} & {key(r)[0] for r in train}
    per_doc = {}
    for r in train:
        per_doc.setdefault(r["extra_info"]["doc_id"], []).append(r)
    assert max(len(v) for v in per_doc.values()) <= rpt_built["cfg"].max_positions_per_doc
    indexes = [r["extra_info"]["index"] for n in FILES for r in rows(rpt_built, n)]
    assert sorted(indexes) == list(range(len(indexes)))


def test_report_accounts_for_every_document_and_position(rpt_built):
    rep = rpt_built["report"]
    d, pos = rep["documents"], rep["positions"]
    used = sum(d["used_per_split"].values())
    assert d["read"] == 10 == used + sum(d["skipped_at_read"].values()) + sum(d["skipped_at_build"].values())
    assert d["used_per_split"]["val"] == 3
    assert sum(pos["entropy_histogram"].values()) == pos["scored"] >= pos["above_threshold"] > 0
    assert rep["samples"] == {
        n: pq.ParquetFile(os.path.join(rpt_built["dir"], f"{n}.parquet")).metadata.num_rows for n in FILES
    }
    on_disk = json.load(open(os.path.join(rpt_built["dir"], "rpt_report.json")))
    assert on_disk["samples"] == rep["samples"] and not math.isnan(rep["_seconds"])


def test_positions_whose_next_token_has_a_lone_brace_are_skipped(rpt_built):
    """\\boxed{} is read with matched braces, so a next token "{" or "}" alone could never score: such
    positions (common in LaTeX maths) are dropped and counted, never written."""
    for name in FILES:
        for r in pq.read_table(os.path.join(rpt_built["dir"], f"{name}.parquet")).to_pylist():
            token = r["extra_info"]["next_token"]
            assert token.count("{") == token.count("}"), token
    assert rpt_built["report"]["positions"]["dropped"].get("unbalanced_brace", 0) > 0  # champ solutions have them


def test_deterministic_and_seeded(rpt_built, tmp_path):
    cfg = rpt_built["cfg"]
    again = tmp_path / "again"
    run_build_rpt(RPTBuildConfig(**{**cfg.__dict__, "output": str(again), "batch_tokens": 4096}), quiet=True)
    for name in FILES:
        assert filecmp.cmp(os.path.join(rpt_built["dir"], f"{name}.parquet"), again / f"{name}.parquet", shallow=False)
    v6 = tmp_path / "v6"
    run_build_rpt(RPTBuildConfig(**{**cfg.__dict__, "output": str(v6), "template": "v6", "seed": 6}), quiet=True)
    first = pq.read_table(v6 / "train.parquet").to_pylist()[0]
    assert first["prompt"][0]["content"].startswith("Complete the given text wrapped in ```")
    assert first["prompt"][0]["content"].endswith("```, now please predict the next token.")
    a = {(r["extra_info"]["doc_id"], r["extra_info"]["char_offset"]) for r in rows(rpt_built, "train")}
    b = {
        (r["extra_info"]["doc_id"], r["extra_info"]["char_offset"])
        for r in pq.read_table(v6 / "train.parquet").to_pylist()
    }
    assert a != b  # another seed samples other positions


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def rlpt(*args, **kw):
    return subprocess.run([sys.executable, "-m", "rlpt_verl.cli", *args], capture_output=True, text=True, **kw)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--proxy-model", "{tmp}/nope"], "--proxy-model '{tmp}/nope' is not a folder"),
        (["--proxy-model", "{tmp}"], "cannot load the tokenizer of --proxy-model"),
        (["--window-overlap", "2000"], "--window-overlap must be >= 1 and < --window-tokens"),
        (["--window-overlap", "0"], "--window-overlap must be >= 1"),
        (["--template", "v9"], "invalid choice: 'v9'"),
        (["--max-prompt-tokens", "40"], "leaves no room for context"),
        (
            ["--entropy-threshold", "99"],
            "--entropy-threshold 99.0 can never be exceeded",
        ),
        pytest.param(
            ["--device", "cuda"],
            "--device cuda: this torch",  # before the model loads, not an AssertionError from inside torch
            marks=pytest.mark.skipif(_cuda(), reason="this torch can use CUDA"),
        ),
        (["--val-docs", "100000"], "usable documents went to validation (--val-docs 100000); lower --val-docs"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(tmp_path, champ_jsonl, model_dir, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--proxy-model" not in args:
        args += ["--proxy-model", model_dir]
    p = rlpt(
        "build-rpt",
        champ_jsonl,
        "--tokenizer",
        model_dir,
        "-o",
        str(tmp_path / "out"),
        "--val-docs",
        "0",
        "--quiet",
        *args,
    )
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert message.replace("{tmp}", str(tmp_path)) in p.stderr
    assert "Traceback" not in p.stderr
