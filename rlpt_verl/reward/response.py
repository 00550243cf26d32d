"""What both reward managers read from a reward-loop item: the scored response, decoded."""

from __future__ import annotations


def decode_response(tokenizer, item) -> str:
    """Text of a DataProto item's valid response tokens.

    Special tokens are kept: a tokenizer may register the prediction tags or ``</think>`` as special
    tokens, and dropping them would lose the answer's boundaries.
    """
    response_ids = item.batch["responses"]
    valid = int(item.batch["attention_mask"][-response_ids.shape[-1] :].sum())
    return tokenizer.decode(response_ids[:valid], skip_special_tokens=False)
