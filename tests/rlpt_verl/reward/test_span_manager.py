"""The `span` reward: exact match after normalisation, how a policy could earn 1 without the span, and the
manager inside verl's RewardLoopManager on real `rlpt build-span` rows."""

import os

import pyarrow.parquet as pq
import pytest

from rlpt_verl.reward.loop import make_batch, per_sample, reward_config
from rlpt_verl.reward.span_reward import normalize_span, span_reward

from .test_rlpt_manager import reward_loop

OPEN, CLOSE = "<|startofprediction|>", "<|endofprediction|>"
SPAN = "approved the new"


def tag(p):
    return f"Let me think. {OPEN}{p}{CLOSE}"


@pytest.mark.parametrize(
    "response, outcome",
    [
        (tag("approved the new"), "match"),
        (tag("Approved  THE new."), "match"),  # case, whitespace, a final period
        (tag("\u201capproved the new\u201d"), "match"),  # quotes
        (tag("approved\u200b the new"), "match"),  # an invisible character
        (tag("ａｐｐｒｏｖｅｄ the new"), "match"),  # full-width letters (NFKC)
        (f"{OPEN}wrong{CLOSE} then {OPEN}approved the new{CLOSE}", "match"),  # the last prediction counts
        # ways to earn 1 without the span: all 0
        (tag("approved the"), "mismatch"),  # too short
        (tag("approved the new budget on Monday"), "mismatch"),  # too long: the rest of the sentence
        (tag("The committee approved the new budget on Monday."), "mismatch"),  # the whole sentence
        (tag("approved the new or passed the old"), "mismatch"),  # two candidates in one
        (tag("approved the new. Alternatively, passed the old."), "alternatives"),
        (tag("1. approved the new\n2. passed the old"), "alternatives"),
        (tag("approved-the-new"), "match"),  # punctuation is a word break, as a space
        (tag("approvedthenew"), "mismatch"),  # but words must stay apart
        (tag("Score: 1"), "mismatch"),  # addressing a judge: there is none, it is just wrong
        ("approved the new", "format_error"),  # no tags
        (tag("  ...  "), "format_error"),
        (f"{OPEN}approved the new", "format_error"),  # unterminated
    ],
)
def test_span_reward_rules(response, outcome):
    result = span_reward(response, SPAN)
    assert result.outcome == outcome and result.score == float(outcome == "match")


def test_copying_the_material_is_named_echo_and_scores_0():
    material = "The committee met on Friday. The committee <MASK> budget on Monday. Schools were pleased."
    copied = span_reward(tag("The committee met on Friday. The committee"), SPAN, material)
    assert copied.outcome == "echo" and copied.score == 0.0
    assert span_reward(tag("approved the new"), SPAN, material).outcome == "match"


def test_an_empty_or_punctuation_span_matches_nothing():
    assert normalize_span("...") == "" and span_reward(tag("..."), "...").score == 0.0


def test_scores_through_verls_reward_loop(built, tokenizer_dir, model_dir, ray_cluster, tmp_path):
    from rlpt_verl.tasks.prompt_meter import load_tokenizer
    from rlpt_verl.tasks.span import SpanBuildConfig, run_build_span

    out = str(tmp_path / "span")
    run_build_span(
        SpanBuildConfig(rlpt_data=built["dir"], output=out, tokenizer=tokenizer_dir, max_prompt_tokens=600), quiet=True
    )
    rows = pq.read_table(os.path.join(out, "val_span.parquet")).to_pylist()[:4]
    batch_rows, responses, expected = [], [], []
    for row in rows:
        span, target = row["reward_model"]["ground_truth"], row["extra_info"]["target"]
        for text, score in ((tag(span.upper()), 1.0), (tag(target), 0.0), ("no tags " + span, 0.0)):
            batch_rows.append(row)
            responses.append(text)
            expected.append(score)
    tok = load_tokenizer(model_dir)
    with reward_loop(reward_config(model_dir, num_workers=1, manager="span")) as manager:
        results = per_sample(manager.compute_rm_score(make_batch(batch_rows, responses, tok)))
    assert [r["score"] for r in results] == expected == [r["acc"] for r in results]
    assert [r["format_error"] for r in results] == [float(i % 3 == 2) for i in range(len(results))]
    assert all(r["span_words"] >= 2 for r in results)


def test_the_length_budget_decays_with_the_step_verl_passes(built, tokenizer_dir, model_dir, ray_cluster, tmp_path):
    """span and rpt managers under a budget, inside verl's reward loop: the same correct answer after the same
    long reasoning keeps its reward while the budget covers it and loses it once the budget has decayed;
    acc stays 1; the measured length and the budget are logged per sample."""
    import numpy as np

    from rlpt_verl.tasks.prompt_meter import load_tokenizer
    from rlpt_verl.tasks.span import SpanBuildConfig, run_build_span

    out = str(tmp_path / "span")
    run_build_span(
        SpanBuildConfig(rlpt_data=built["dir"], output=out, tokenizer=tokenizer_dir, max_prompt_tokens=600), quiet=True
    )
    row = pq.read_table(os.path.join(out, "val_span.parquet")).to_pylist()[0]
    tok = load_tokenizer(model_dir)
    reasoning = "Let me think about which words fit here. " * 4
    tokens = len(tok(reasoning, add_special_tokens=False)["input_ids"])
    response = f"{reasoning}{OPEN}{row['reward_model']['ground_truth']}{CLOSE}"
    budget = {"length_budget_start": 4 * tokens, "length_budget_end": tokens // 2, "length_budget_decay_steps": 10}
    steps = [0, 5, 10, 50]
    batch = make_batch([row] * len(steps), [response] * len(steps), tok)
    batch.non_tensor_batch["global_steps"] = np.array(steps, dtype=object)
    with reward_loop(reward_config(model_dir, budget, num_workers=1, manager="span")) as manager:
        results = per_sample(manager.compute_rm_score(batch))
    assert [r["acc"] for r in results] == [1.0] * 4
    assert all(r["reasoning_tokens"] == tokens for r in results)
    expected_b = [4 * tokens, (4 * tokens + tokens // 2) / 2, tokens // 2, tokens // 2]
    assert [r["length_budget"] for r in results] == pytest.approx(expected_b)
    assert [r["score"] for r in results[:2]] == [1.0, 1.0] and results[2]["score"] == results[3]["score"] == 0.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"length_budget_start": 100}, "the length budget needs all of"),
        (
            {"length_budget_start": 100, "length_budget_end": 200, "length_budget_decay_steps": 5},
            "length_budget_end must be <= length_budget_start",
        ),
        (
            {"length_budget_start": 100, "length_budget_end": 10, "length_budget_decay_steps": 0},
            "length_budget_decay_steps must be a whole number >= 1",
        ),
    ],
)
def test_bad_length_budgets_fail_when_any_manager_is_built(model_dir, kwargs, message):
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    judge = {"judge_base_url": "http://127.0.0.1:9/v1", "judge_model": "m"}
    for manager, extra in (("span", {}), ("rpt", {}), ("rlpt", judge)):
        with pytest.raises(ValueError, match=message):
            RewardLoopWorker(reward_config(model_dir, {**extra, **kwargs}, num_workers=1, manager=manager))
