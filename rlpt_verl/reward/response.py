"""What the reward managers read from a reward-loop item: the scored response, decoded, and the prompt."""

from __future__ import annotations

import asyncio


def decode_response(tokenizer, item) -> str:
    """Text of a DataProto item's valid response tokens.

    Special tokens are kept: a tokenizer may register the prediction tags or ``</think>`` as special
    tokens, and dropping them would lose the answer's boundaries.
    """
    response_ids = item.batch["responses"]
    valid = int(item.batch["attention_mask"][-response_ids.shape[-1] :].sum())
    return tokenizer.decode(response_ids[:valid], skip_special_tokens=False)


async def decode_response_off_loop(tokenizer, item) -> str:
    """:func:`decode_response` in a worker thread: an 8k-token response takes ~12 ms to decode on a busy CPU
    (SmolLM2's fast tokenizer), ~6 s per worker and step at the paper's batch, during which the reward loop
    would dispatch no judge request. The Rust tokenizer releases the GIL, so this runs beside the loop."""
    return await asyncio.to_thread(decode_response, tokenizer, item)


def prompt_text(item, tokenizer) -> str:
    """What the policy was shown: the dataset's chat prompt, else the decoded prompt tokens."""
    raw = item.non_tensor_batch.get("raw_prompt")
    if raw is not None:
        try:
            return "\n".join(str(m.get("content", "")) for m in list(raw) if isinstance(m, dict))
        except TypeError:
            pass
    prompts = item.batch.get("prompts") if item.batch is not None else None
    if prompts is None:
        return ""
    return tokenizer.decode(prompts[prompts != (tokenizer.pad_token_id or 0)], skip_special_tokens=True)


async def count_tokens_off_loop(tokenizer, text: str) -> int:
    """Policy tokens in ``text`` (the reasoning a length budget counts), tokenised in a worker thread."""
    return await asyncio.to_thread(lambda: len(tokenizer(text, add_special_tokens=False)["input_ids"]))


async def budgeted(budget, score: float, info: dict, response: str, marker: str, tokenizer, item) -> float:
    """``score`` under the manager's length budget (None: off, unchanged); the budget's figures go into ``info``."""
    if budget is None:
        return score
    from .length_budget import reasoning_prefix, shape, step_of

    tokens = await count_tokens_off_loop(tokenizer, reasoning_prefix(response, marker))
    shaped, extra = shape(score, tokens, budget, step_of(item.non_tensor_batch.get("global_steps")))
    info.update(extra)
    return shaped
