"""Windowed top-16 entropy against a direct computation from the real model's logits (SmolLM2)."""

import importlib.util
import math
import random

import pytest
import torch

from rlpt_verl.errors import UserError
from rlpt_verl.tasks.prompt_meter import load_tokenizer
from rlpt_verl.tasks.rpt_entropy import (
    HFEntropyScorer,
    entropy_from_logprobs,
    make_scorer,
    plan_windows,
    top_k_entropy,
)

WINDOW, OVERLAP = 64, 16


@pytest.mark.parametrize("n", [0, 1, 2, 5, 64, 65, 100, 113, 500])
@pytest.mark.parametrize(("window", "overlap"), [(64, 16), (8, 1), (8, 7)])
def test_windows_score_every_position_once_with_enough_left_context(n, window, overlap):
    owned = []
    for start, end, own_from in plan_windows(n, window, overlap):
        assert end - start <= window
        assert own_from == 1 or own_from - start >= overlap  # at least `overlap` tokens of context
        owned.extend(range(own_from, end))
    assert owned == list(range(1, n))


def test_overlap_0_is_rejected():
    """With no overlap a window's first position would be owned by a window that has no logit before it."""
    with pytest.raises(ValueError, match="need 1 <= overlap < window"):
        plan_windows(100, 8, 0)


def test_top_k_entropy_is_the_renormalised_top_16():
    logits = torch.tensor([[5.0, 5.0] + [-1e4] * 30, [1.0] * 32])
    h = top_k_entropy(logits)
    assert h[0].item() == pytest.approx(math.log(2), abs=1e-6)
    assert h[1].item() == pytest.approx(math.log(16), abs=1e-6)  # 32 equal logits: only 16 count


@pytest.fixture(scope="module")
def scorer(model_dir):
    return HFEntropyScorer(model_dir, window=WINDOW, overlap=OVERLAP, batch_tokens=512)


@pytest.fixture(scope="module")
def sequences(model_dir, champ_jsonl):
    import json

    tok = load_tokenizer(model_dir)
    texts = [json.loads(line)["text"] for line in open(champ_jsonl)][:4]
    return [tok(t)["input_ids"] for t in texts]


def direct(model, ids: list[int]) -> float:
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
    return top_k_entropy(logits.unsqueeze(0)).item()


def test_windowed_entropy_equals_a_direct_forward_pass(scorer, sequences):
    assert scorer.split_head, "SmolLM2 (Llama architecture) should use the decoder + chunked LM head path"
    assert max(map(len, sequences)) > 2 * WINDOW, "the test needs documents that cross window seams"
    out = scorer.score(sequences)
    rng = random.Random(0)
    checked = seams = 0
    for d, seq in enumerate(sequences):
        assert math.isnan(out[d][0]) and not any(math.isnan(h) for h in out[d][1:])
        for start, end, own_from in plan_windows(len(seq), WINDOW, OVERLAP):
            # both sides of each seam, plus random positions inside the window
            picks = {own_from, min(own_from + 1, end - 1), end - 1, rng.randrange(own_from, end)}
            for p in picks:
                ref = direct(scorer.model, seq[start:p])  # the same left context the window gives p
                assert out[d][p] == pytest.approx(ref, abs=2e-4), (d, p)
                checked += 1
                seams += start > 0 and p == own_from
    assert checked > 30 and seams >= 3


def test_batching_does_not_change_results(model_dir, scorer, sequences):
    one_by_one = HFEntropyScorer(model_dir, window=WINDOW, overlap=OVERLAP, batch_tokens=WINDOW)
    a, b = scorer.score(sequences), one_by_one.score(sequences)
    for x, y in zip(a, b, strict=True):
        assert x[1:] == pytest.approx(y[1:], abs=2e-4)


def test_vllm_prompt_logprobs_give_the_same_entropy(scorer, sequences):
    """The vLLM backend's conversion, fed with this model's full-vocabulary log-probabilities."""
    with torch.inference_mode():
        logits = scorer.model(input_ids=torch.tensor([sequences[0][:40]])).logits[0]
    logprobs = logits.float().log_softmax(-1)
    for row in (5, 20, 39):
        top = logprobs[row].topk(17).values.tolist()  # vLLM: the top 16 plus the actual token
        assert entropy_from_logprobs(top) == pytest.approx(top_k_entropy(logits[row : row + 1]).item(), abs=1e-4)


def test_bad_settings_are_user_errors(model_dir, tmp_path):
    with pytest.raises(UserError, match="--window-overlap"):
        HFEntropyScorer(model_dir, window=64, overlap=64)
    with pytest.raises(UserError, match="--proxy-model"):
        HFEntropyScorer(str(tmp_path))
    with pytest.raises(UserError, match="--proxy-backend"):
        make_scorer("onnx", model_dir, 64, 16, 512, "cpu", "auto")
    if importlib.util.find_spec("vllm") is None:
        with pytest.raises(UserError, match="needs vLLM"):
            make_scorer("vllm", model_dir, 64, 16, 512, "cpu", "auto")
