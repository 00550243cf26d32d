"""Glue to score responses through verl's own reward loop outside a trainer (quickstart, judge-eval, tests).

:func:`reward_config` composes verl 0.9.1's real ``ppo_trainer`` config with the reward overrides a
recipe would use; :func:`make_batch` builds the DataProto the agent loop would hand to the reward loop
(left-padded prompt ids, right-padded response ids, attention mask, and the dataset's non-tensor fields).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def reward_config(
    tokenizer_path: str,
    reward_kwargs: dict | None = None,
    num_workers: int = 2,
    manager: str = "rlpt",
    overrides: list[str] | None = None,
):
    """verl's composed trainer config with ``reward.reward_manager.name=<manager>``; no GPU needed."""
    from hydra import compose, initialize_config_module

    args = [
        f"actor_rollout_ref.model.path={tokenizer_path}",
        f"reward.reward_manager.name={manager}",
        f"reward.num_workers={num_workers}",
    ]
    for key, value in (reward_kwargs or {}).items():
        args.append(f"+reward.reward_kwargs.{key}={hydra_value(value)}")
    with initialize_config_module("verl.trainer.config", version_base=None):
        return compose("ppo_trainer", overrides=args + list(overrides or []))


def hydra_value(value: Any) -> str:
    """``value`` as a Hydra override's value (dicts, booleans, quoted strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{hydra_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return "'" + value.replace("'", "\\'") + "'"
    return str(value)


def make_batch(rows: list[dict], responses: list[str], tokenizer, pad_id: int | None = None):
    """A DataProto of (prompt, response) pairs shaped like the agent loop's output."""
    import torch
    from verl import DataProto

    pad = tokenizer.pad_token_id if pad_id is None else pad_id
    prompts = [tokenizer.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=True) for r in rows]
    prompts = [list(p["input_ids"]) if hasattr(p, "keys") else list(p) for p in prompts]
    answers = [tokenizer(resp, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for resp in responses]
    plen, rlen = max(map(len, prompts)), max(map(len, answers))
    n = len(rows)
    prompt_ids = torch.full((n, plen), pad, dtype=torch.long)
    response_ids = torch.full((n, rlen), pad, dtype=torch.long)
    mask = torch.zeros((n, plen + rlen), dtype=torch.long)
    for i, (p, a) in enumerate(zip(prompts, answers, strict=True)):
        prompt_ids[i, plen - len(p) :] = torch.tensor(p)
        response_ids[i, : len(a)] = torch.tensor(a)
        mask[i, plen - len(p) : plen] = 1
        mask[i, plen : plen + len(a)] = 1
    return DataProto.from_dict(
        tensors={
            "prompts": prompt_ids,
            "responses": response_ids,
            "input_ids": torch.cat([prompt_ids, response_ids], dim=1),
            "attention_mask": mask,
        },
        non_tensors={
            "data_source": np.array([r["data_source"] for r in rows], dtype=object),
            "reward_model": np.array([r["reward_model"] for r in rows], dtype=object),
            "extra_info": np.array([r.get("extra_info", {}) for r in rows], dtype=object),
            "raw_prompt": np.array([r["prompt"] for r in rows], dtype=object),
        },
    )


def per_sample(output) -> list[dict]:
    """Unpack RewardLoopManager.compute_rm_score's DataProto into one dict per sample."""
    scores = output.batch["rm_scores"].sum(dim=-1).tolist()
    keys = output.meta_info.get("reward_extra_keys", [])
    return [{"score": s, **{k: output.non_tensor_batch[k][i].item() for k in keys}} for i, s in enumerate(scores)]
