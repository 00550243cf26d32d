"""A cold-start policy for the CPU end-to-end step: SmolLM2-135M-Instruct taught the three answer formats.

The papers start RL from a cold-start SFT model (RLPT arXiv 2509.19249 §3.3); so does ``make e2e``. The
plain instruct model never writes the prediction tags or a boxed answer in a few dozen tokens, so every
reward would be 0, every GRPO advantage 0 and the actor update a no-op that proves nothing. A few dozen
steps of supervised training on rows of the built data give a policy that answers in each task's format.
Every RLPT training row is taught twice, once with its whole target sentence and once cut to a third of
it: a policy that learns only the gold answer wins every sample of a group (all rewards 1, advantages 0,
no update: measured), while this one answers each prompt either way, so GRPO has something to learn
(and the `rlpt` reward's too-short rule is exercised on real rollouts). Deterministic for a seed;
cached by the hash of its inputs.

Usage: python e2e/smoke_policy.py MODEL_DIR OUT_DIR RLPT_DIR RPT_DIR MATH_DIR
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time

import pandas as pd
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

PRED_OPEN, PRED_CLOSE = "<|startofprediction|>", "<|endofprediction|>"
PER_FILE = 4  # RPT and math rows; the RLPT files are used whole (e2e builds them small)
MAX_ANSWER_TOKENS = 40
EPOCHS = 2
LR = 1e-4


def examples(rlpt_dir: str, rpt_dir: str, math_dir: str) -> list[tuple[list[dict], str]]:
    """(chat messages, gold response in the task's format) for the first rows of each training file."""
    out = []
    for name in ("train_asr.parquet", "train_msr.parquet"):
        for _, r in pd.read_parquet(os.path.join(rlpt_dir, name)).iterrows():
            target = r["extra_info"]["target"]
            out.append((list(r["prompt"]), f"{PRED_OPEN}{target}{PRED_CLOSE}"))
            # the same prompt once more with a prediction cut short (which the reward scores 0: too_short):
            # the policy then answers each prompt either way, so the rewards within a group differ
            words = target.split()
            out.append((list(r["prompt"]), f"{PRED_OPEN}{' '.join(words[: max(1, len(words) // 3)])}{PRED_CLOSE}"))
    for _, r in pd.read_parquet(os.path.join(rpt_dir, "train.parquet")).head(PER_FILE).iterrows():
        gt = r["reward_model"]
        first = gt["ground_truth"].encode()[: int(gt["token_byte_ends"][0])].decode("utf-8", "replace")
        out.append((list(r["prompt"]), f"<think></think> \\boxed{{{first}}}"))
    for _, r in pd.read_parquet(os.path.join(math_dir, "train.parquet")).head(PER_FILE).iterrows():
        out.append((list(r["prompt"]), f"The answer is \\boxed{{{r['reward_model']['ground_truth']}}}."))
    return out


def fingerprint(model_dir: str, data: list[tuple[list[dict], str]]) -> str:
    h = hashlib.sha256(json.dumps([PER_FILE, MAX_ANSWER_TOKENS, EPOCHS, LR, model_dir]).encode())
    for messages, answer in data:
        h.update(json.dumps([[dict(m) for m in messages], answer], sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def train(model_dir: str, out_dir: str, data: list[tuple[list[dict], str]], seed: int = 0) -> dict:
    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.train()
    rows = []
    for messages, answer in data:
        prompt = tok.apply_chat_template([dict(m) for m in messages], add_generation_prompt=True, tokenize=False)
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        a_ids = tok(answer, add_special_tokens=False)["input_ids"][:MAX_ANSWER_TOKENS] + [tok.eos_token_id]
        rows.append((p_ids, a_ids))
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    order = torch.Generator().manual_seed(seed)
    losses, t0 = [], time.perf_counter()
    for _ in range(EPOCHS):
        for i in torch.randperm(len(rows), generator=order).tolist():
            p_ids, a_ids = rows[i]
            ids = torch.tensor([p_ids + a_ids])
            labels = torch.tensor([[-100] * len(p_ids) + a_ids])
            loss = model(input_ids=ids, labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
            losses.append(loss.item())
    tmp = out_dir + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    n = len(rows)
    stats = {
        "examples": n,
        "steps": len(losses),
        "seconds": round(time.perf_counter() - t0, 1),
        "loss_first_epoch": round(sum(losses[:n]) / n, 3),
        "loss_last_epoch": round(sum(losses[-n:]) / n, 3),
    }
    with open(os.path.join(tmp, "smoke_policy.json"), "w") as f:
        json.dump(stats, f)
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
        print(f"cold-start policy: {out_dir} {stats}")
    print(out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
