"""A cold-start policy for the CPU end-to-end step whose first GRPO step is certain to have a gradient.

The papers start RL from a cold-start SFT model (RLPT arXiv 2509.19249 §3.3); so does ``make e2e``. GRPO moves
the weights only when some group's rewards differ: a policy that always loses (the plain instruct model never
writes the prediction tags) or always wins gives zero advantages and a no-op update. So this policy is taught
every training row twice, once with an answer the task's reward scores 1 and once with one it scores 0, and
both answers are checked against the package's own reward rules before training:

- RLPT: the whole target sentence (a textual prefix of the reference: 1, without the judge) and its first
  third (``too_short``: 0);
- RPT: the true next token and another row's next token that is not a prefix of this continuation;
- RLVR (answers of up to 3 digits): the reference answer in ``\\boxed{}`` and 0 (verl's math scorer: 1 and 0).

After training it measures, by teacher forcing, the probability ``w`` of sampling the winning answer and
``l`` of the losing one for each row. A group of ``n`` samples at temperature 1 has equal rewards with
probability at most ``(1-w)^n + (1-l)^n``, so a step over ``B`` rows has no gradient with probability at most
the product of the B largest bounds: ``smoke_policy.json`` keeps the per-row figures, and ``e2e/run_e2e.py``
prints the bound and refuses a policy that does not make it small.

Only the top layers are trained, on the frozen lower layers' states computed once (the texts are fixed): a
few seconds per epoch on a CPU instead of minutes. Deterministic for a seed; cached by the hash of its inputs.

Usage: python e2e/smoke_policy.py MODEL_DIR OUT_DIR RLPT_DIR RPT_DIR MATH_DIR
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass

import pandas as pd
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from rlpt_verl.reward.prefix_judge import precheck  # noqa: E402
from rlpt_verl.reward.rpt_reward import rpt_reward  # noqa: E402

PRED_OPEN, PRED_CLOSE = "<|startofprediction|>", "<|endofprediction|>"
MATH_SOURCE = "DigitalLearningGmbH/MATH-lighteval"
EPOCHS = 12
LR = 1e-3
TRAINED_LAYERS = 4  # of SmolLM2-135M's 30: the rest and the embeddings stay frozen


@dataclass(frozen=True)
class Example:
    messages: list[dict]
    answer: str
    task: str
    row: int
    wins: bool  # the task's reward scores this answer 1 (else 0)


def _messages(row) -> list[dict]:
    return [dict(m) for m in row["prompt"]]


def rlpt_examples(rlpt_dir: str) -> list[Example]:
    out = []
    for task in ("asr", "msr"):
        df = pd.read_parquet(os.path.join(rlpt_dir, f"train_{task}.parquet"))
        for i, r in df.iterrows():
            target, ref = r["extra_info"]["target"], r["reward_model"]["ground_truth"]
            msgs = _messages(r)
            shown = " ".join(m["content"] for m in msgs)
            words = target.split()
            win = f"{PRED_OPEN}{target}{PRED_CLOSE}"
            lose = f"{PRED_OPEN}{' '.join(words[: max(1, len(words) // 3)])}{PRED_CLOSE}"
            if precheck(win, ref, target, shown).score != 1.0 or not precheck(lose, ref, target, shown).too_short:
                raise SystemExit(f"rlpt {task} row {i}: the taught answers do not score 1 and 0: {target!r}")
            out += [Example(msgs, win, f"rlpt_{task}", int(i), True)]
            out += [Example(msgs, lose, f"rlpt_{task}", int(i), False)]
    return out


def rpt_examples(rpt_dir: str) -> list[Example]:
    df = pd.read_parquet(os.path.join(rpt_dir, "train.parquet"))
    firsts = []  # each row's true next token
    for _, r in df.iterrows():
        gt = r["reward_model"]
        firsts.append(gt["ground_truth"].encode()[: int(gt["token_byte_ends"][0])].decode("utf-8", "replace"))
    out = []
    for i, r in df.iterrows():
        gt, ends = r["reward_model"]["ground_truth"], list(r["reward_model"]["token_byte_ends"])

        def answer(token: str) -> str:
            return f"<think></think> \\boxed{{{token}}}"

        wrong = next((t for t in firsts if rpt_reward(answer(t), gt, ends).score == 0.0), " the")
        if rpt_reward(answer(firsts[i]), gt, ends).score != 1.0 or rpt_reward(answer(wrong), gt, ends).score != 0.0:
            raise SystemExit(f"rpt row {i}: the taught answers do not score 1 and 0")
        out += [Example(_messages(r), answer(firsts[i]), "rpt", int(i), True)]
        out += [Example(_messages(r), answer(wrong), "rpt", int(i), False)]
    return out


def math_examples(math_dir: str) -> list[Example]:
    from verl.utils.reward_score import default_compute_score

    df = pd.read_parquet(os.path.join(math_dir, "train.parquet"))
    out = []
    for i, r in df.iterrows():
        gt = str(r["reward_model"]["ground_truth"])
        win = f"The answer is \\boxed{{{gt}}}."
        # a wrong whole number that parts from the right one at its first digit: one decision, then a few
        # digits to learn (a wrong answer sharing the right one's digits was slower to learn)
        lose = "The answer is \\boxed{0}." if gt.strip() != "0" else "The answer is \\boxed{1}."
        if default_compute_score(MATH_SOURCE, win, gt) != 1.0 or default_compute_score(MATH_SOURCE, lose, gt) != 0.0:
            raise SystemExit(f"math row {i}: the taught answers do not score 1 and 0: {gt!r}")
        out += [Example(_messages(r), win, "math", int(i), True), Example(_messages(r), lose, "math", int(i), False)]
    return out


def examples(rlpt_dir: str, rpt_dir: str, math_dir: str) -> list[Example]:
    return rlpt_examples(rlpt_dir) + rpt_examples(rpt_dir) + math_examples(math_dir)


def fingerprint(model_dir: str, data: list[Example]) -> str:
    h = hashlib.sha256(json.dumps([EPOCHS, LR, TRAINED_LAYERS, model_dir]).encode())
    for e in data:
        h.update(json.dumps([e.messages, e.answer, e.task, e.row, e.wins], sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def tokenize(tok, data: list[Example]) -> list[tuple[list[int], list[int]]]:
    rows = []
    for e in data:
        prompt = tok.apply_chat_template(e.messages, add_generation_prompt=True, tokenize=False)
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        a_ids = tok(e.answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        rows.append((p_ids, a_ids))
    return rows


def _batch(p_ids: list[int], answers: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """One prompt's answers, right-padded (a causal model never looks at the padding after a sequence)."""
    longest = max(len(a) for a in answers)
    ids = torch.tensor([p_ids + a + [0] * (longest - len(a)) for a in answers])
    mask = torch.tensor([[1] * len(a) + [0] * (longest - len(a)) for a in answers])
    return ids, mask


@torch.no_grad()
def lower_states(model, p_ids: list[int], answers: list[list[int]]) -> torch.Tensor:
    """What the frozen lower layers hand to the trained ones: computed once, since they never change."""
    ids, _ = _batch(p_ids, answers)
    out = model.model(input_ids=ids, output_hidden_states=True)
    return out.hidden_states[len(model.model.layers) - TRAINED_LAYERS]


def answer_logprobs(model, states: torch.Tensor, p_ids: list[int], answers: list[list[int]]) -> torch.Tensor:
    """log P(answer, then end of sequence | prompt) per answer, running only the trained upper layers on the
    lower layers' states; only the answer positions go through the output layer."""
    ids, mask = _batch(p_ids, answers)
    pos = torch.arange(ids.shape[1])[None]
    h = states
    rope = model.model.rotary_emb(h, position_ids=pos)
    for layer in model.model.layers[-TRAINED_LAYERS:]:  # SDPA with no mask is causal
        h = layer(h, attention_mask=None, position_ids=pos, position_embeddings=rope)
    logits = model.lm_head(model.model.norm(h[:, len(p_ids) - 1 : -1])).float()
    picked = torch.log_softmax(logits, -1).gather(2, ids[:, len(p_ids) :, None])[..., 0]
    return (picked * mask).sum(1)


@torch.no_grad()
def full_logprobs(model, p_ids: list[int], answers: list[list[int]]) -> torch.Tensor:
    """The same through the whole saved model, as vLLM will sample from it (the figures that are kept)."""
    ids, mask = _batch(p_ids, answers)
    logits = model(input_ids=ids, logits_to_keep=mask.shape[1] + 1).logits[:, :-1].float()
    picked = torch.log_softmax(logits, -1).gather(2, ids[:, len(p_ids) :, None])[..., 0]
    return (picked * mask).sum(1)


def chances(groups: dict, logprobs) -> list[dict]:
    """Per row: the chance of sampling its winning answer and its losing one (teacher forcing)."""
    out = []
    for (task, row), g in groups.items():
        lp = logprobs(g).tolist()
        pair = {
            ("win" if e.wins else "lose"): round(math.exp(float(x)), 4) for e, x in zip(g["examples"], lp, strict=1)
        }
        out.append({"task": task, "row": row, **pair})
    return out


def win_margins(model_dir: str, rlpt_dir: str, state: dict | None = None) -> dict[tuple[str, int], float]:
    """log P(win) - log P(lose) per RLPT training row, by teacher forcing through the model in ``model_dir``,
    or through that architecture with the weights ``state`` (a saved actor). A step that learnt from its
    rewards widens the margin; a flipped advantage sign or a wrong λ weight narrows it."""
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa")
    if state is not None:
        missing, _ = model.load_state_dict(state, strict=False)
        if [k for k in missing if not k.endswith("lm_head.weight")]:  # tied to the embeddings in SmolLM2
            raise SystemExit(f"the saved actor lacks weights: {missing[:5]}")
    model.eval()
    data = rlpt_examples(rlpt_dir)
    groups: dict[tuple[str, int], dict] = {}
    for e, (p_ids, a_ids) in zip(data, tokenize(tok, data), strict=True):
        g = groups.setdefault((e.task, e.row), {"prompt": p_ids, "answers": [], "wins": []})
        g["answers"].append(a_ids)
        g["wins"].append(e.wins)
    out = {}
    for key, g in groups.items():
        lp = full_logprobs(model, g["prompt"], g["answers"]).tolist()
        win = sum(x for x, w in zip(lp, g["wins"], strict=True) if w)
        lose = sum(x for x, w in zip(lp, g["wins"], strict=True) if not w)
        out[key] = win - lose
    return out


def least(rows: list[dict]) -> float:
    return min(min(r["win"], r["lose"]) for r in rows)


def train(model_dir: str, out_dir: str, data: list[Example], seed: int = 0) -> dict:
    """Both answers of a row in one step: the loss is lowest when they share the row's probability evenly."""
    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa")
    model.eval()  # no dropout; gradients still flow
    for p in model.parameters():
        p.requires_grad_(False)
    trained = [*model.model.layers[-TRAINED_LAYERS:].parameters(), *model.model.norm.parameters()]
    for p in trained:
        p.requires_grad_(True)
    groups: dict[tuple[str, int], dict] = {}
    for e, (p_ids, a_ids) in zip(data, tokenize(tok, data), strict=True):
        g = groups.setdefault((e.task, e.row), {"prompt": p_ids, "answers": [], "examples": []})
        g["answers"].append(a_ids)
        g["examples"].append(e)
    t0 = time.perf_counter()
    for g in groups.values():
        g["states"] = lower_states(model, g["prompt"], g["answers"])
    print(f"  lower layers' states of {len(groups)} rows: {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    def upper(g: dict) -> torch.Tensor:
        return answer_logprobs(model, g["states"], g["prompt"], g["answers"])

    keys = list(groups)
    opt = torch.optim.AdamW(trained, lr=LR, weight_decay=0.0)
    # cosine decay to 0: a constant rate this high keeps tipping each row's two answers back and forth
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS * len(keys))
    order = torch.Generator().manual_seed(seed)
    losses = []
    for epoch in range(EPOCHS):
        for i in torch.randperm(len(keys), generator=order).tolist():
            loss = -upper(groups[keys[i]]).mean()
            loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad()
            losses.append(loss.item())
        with torch.no_grad():
            rows = chances(groups, upper)
        worst = sorted(rows, key=lambda r: min(r["win"], r["lose"]))[:2]
        elapsed = time.perf_counter() - t0
        print(f"  epoch {epoch + 1}/{EPOCHS}: least likely answers {worst} ({elapsed:.0f} s)", file=sys.stderr)
    rows = chances(groups, lambda g: full_logprobs(model, g["prompt"], g["answers"]))
    tmp = out_dir + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    stats = {
        "rows": len(keys),
        "epochs": EPOCHS,
        "steps": len(losses),
        "seconds": round(time.perf_counter() - t0, 1),
        "loss_last_epoch": round(sum(losses[-len(keys) :]) / max(1, len(keys)), 3),
        "least_likely_answer": least(rows),
        "chances": rows,
    }
    with open(os.path.join(tmp, "smoke_policy.json"), "w") as f:
        json.dump(stats, f, indent=1)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    return stats


def main(argv: list[str]) -> int:
    model_dir, out_root, rlpt_dir, rpt_dir, math_dir = argv
    data = examples(rlpt_dir, rpt_dir, math_dir)
    out_dir = os.path.join(out_root, f"smoke-policy-{fingerprint(model_dir, data)}")
    if os.path.exists(os.path.join(out_dir, "smoke_policy.json")):
        print(f"cold-start policy (cached): {out_dir}")
    else:
        stats = train(model_dir, out_dir, data)
        shown = {k: v for k, v in stats.items() if k != "chances"}
        print(f"cold-start policy: {out_dir} {shown}")  # stdout: the last line is the folder (run_e2e.py)
    print(out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
