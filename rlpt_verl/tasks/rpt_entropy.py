"""Top-16 next-token entropy of a proxy LM at every position (arXiv 2506.08007), one forward pass per text window.

Long token sequences are cut into windows of ``window`` tokens that overlap by ``overlap``; each
position is scored from exactly one window, the first one in which it has at least ``overlap`` tokens
of left context (or the whole prefix, in the first window), so a position's entropy does not depend on
where a seam falls beyond that. Windows of many documents are packed into batches of about
``batch_tokens`` tokens, and only the hidden states of owned positions go through the LM head, in
chunks, straight into ``topk``: the full ``[batch, length, vocab]`` logits are never materialised.

Entropy is in nats, of the softmax renormalised over the 16 largest logits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rlpt_verl.errors import UserError

TOP_K = 16
MAX_ENTROPY = math.log(TOP_K)  # nats: the top-16 renormalised entropy never exceeds ln 16 ≈ 2.77


def check_device(device: str, backend: str = "hf") -> None:
    """Refuse a CUDA ``--device`` this torch cannot use, before any model is loaded (one line, not an assert
    from inside torch after minutes of loading)."""
    if backend != "hf" or not device.startswith("cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}, no GPU visible"
        raise UserError(
            f"--device {device}: this torch ({torch.__version__}, {build}) cannot use CUDA; use --device cpu "
            "(or auto), or install a CUDA build of torch"
        )
    index = device.partition(":")[2]
    if index.isdigit() and int(index) >= torch.cuda.device_count():
        raise UserError(f"--device {device}: only {torch.cuda.device_count()} GPU(s) visible (cuda:0 ...)")


def entropy_from_logprobs(logprobs: Sequence[float], k: int = TOP_K) -> float:
    """Entropy of the distribution renormalised over the k largest of ``logprobs`` (vLLM's prompt logprobs).

    >>> round(entropy_from_logprobs([math.log(0.5), math.log(0.5)]), 6) == round(math.log(2), 6)
    True
    """
    top = sorted(logprobs, reverse=True)[:k]
    m = top[0]
    z = sum(math.exp(x - m) for x in top)
    ps = [math.exp(x - m) / z for x in top]
    return -sum(p * math.log(p) for p in ps if p > 0)


def top_k_entropy(logits, k: int = TOP_K):
    """Row-wise entropy of softmax over the k largest logits (float32 maths whatever the input dtype)."""
    top = logits.float().topk(k, dim=-1).values
    logp = top.log_softmax(dim=-1)
    return -(logp.exp() * logp).sum(dim=-1)


@dataclass(frozen=True)
class Window:
    doc: int  # index of the sequence in the scored batch
    start: int  # first token of the window
    end: int  # one past its last token
    own_from: int  # first predicted position this window scores; it scores [own_from, end)


def plan_windows(n: int, window: int, overlap: int) -> list[tuple[int, int, int]]:
    """(start, end, own_from) covering predicted positions 1..n-1 of an n-token sequence.

    >>> plan_windows(10, 4, 1)
    [(0, 4, 1), (3, 7, 4), (6, 10, 7)]
    >>> plan_windows(1, 4, 1)
    []
    """
    if not 1 <= overlap < window:  # a window's first token has no logits before it: it needs >= 1 of context
        raise ValueError(f"need 1 <= overlap < window, got overlap={overlap}, window={window}")
    out, start = [], 0
    while n > 1:
        end = min(start + window, n)
        out.append((start, end, 1 if start == 0 else start + overlap))
        if end == n:
            break
        start = end - overlap
    return out


def windows_of(sequences: Sequence[Sequence[int]], window: int, overlap: int) -> list[Window]:
    """Every sequence's windows (:func:`plan_windows`), in sequence order."""
    return [
        Window(d, s, e, o) for d, seq in enumerate(sequences) for s, e, o in plan_windows(len(seq), window, overlap)
    ]


class HFEntropyScorer:
    """Scores token sequences with a local Hugging Face causal LM (CPU or one GPU)."""

    def __init__(
        self,
        model_path: str,
        window: int = 1024,
        overlap: int = 256,
        batch_tokens: int = 16384,
        device: str = "auto",
        dtype: str = "auto",
        head_chunk: int = 4096,
    ):
        import torch
        from transformers import AutoModelForCausalLM

        if not 1 <= overlap < window:
            raise UserError(f"--window-overlap must be >= 1 and < --window-tokens ({window}), got {overlap}")
        if batch_tokens < window:
            raise UserError(f"--batch-tokens ({batch_tokens}) must be >= --window-tokens ({window})")
        self.window, self.overlap, self.batch_tokens, self.head_chunk = window, overlap, batch_tokens, head_chunk
        self.device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
        if dtype == "auto":
            dtype = "bfloat16" if self.device.type == "cuda" else "float32"
        try:
            self.model = AutoModelForCausalLM.from_pretrained(
                model_path, dtype=getattr(torch, dtype), local_files_only=True
            )
        except (OSError, ValueError) as e:
            raise UserError(
                f"cannot load proxy model {model_path!r}: pass --proxy-model a local folder with a causal LM "
                f"({type(e).__name__}: {str(e).splitlines()[0][:200]})"
            ) from None
        self.model.to(self.device).eval()
        self.pad_id = 0
        self.decoder = self.model.get_decoder() if hasattr(self.model, "get_decoder") else None
        self.head = self.model.get_output_embeddings()
        self.split_head = self._check_split_head()

    # -- the forward pass -------------------------------------------------------------------
    def _head_logits(self, hidden):
        cfg = self.model.config
        logits = self.head(hidden)
        if getattr(cfg, "logit_scale", None):  # Cohere-style scaling
            logits = logits * cfg.logit_scale
        cap = getattr(cfg, "final_logit_softcapping", None)
        if cap:  # Gemma-2-style soft-capping
            logits = (logits / cap).tanh() * cap
        return logits

    def _check_split_head(self) -> bool:
        """Whether decoder + LM head reproduces the model's own logits; otherwise use its full forward."""
        import torch

        if self.decoder is None or self.head is None:
            return False
        ids = torch.arange(3, 40, device=self.device).unsqueeze(0) % self.model.config.vocab_size
        with torch.inference_mode():
            full = self.model(input_ids=ids).logits
            split = self._head_logits(self.decoder(input_ids=ids).last_hidden_state)
        return bool(torch.allclose(full.float(), split.float(), atol=1e-3, rtol=1e-3))

    def _entropies(self, ids, mask, rows, cols):
        """Entropy at (rows, cols) of the batch: the prediction made from token cols for token cols+1."""
        import torch

        with torch.inference_mode():
            if self.split_head:
                hidden = self.decoder(input_ids=ids, attention_mask=mask).last_hidden_state
                picked = hidden[rows, cols]
                parts = [
                    top_k_entropy(self._head_logits(picked[i : i + self.head_chunk]))
                    for i in range(0, picked.shape[0], self.head_chunk)
                ]
                return torch.cat(parts) if parts else picked.new_zeros(0)
            logits = self.model(input_ids=ids, attention_mask=mask).logits
            return top_k_entropy(logits[rows, cols])

    # -- public API -------------------------------------------------------------------------
    def batches(self, sequences: Sequence[Sequence[int]]) -> list[list[Window]]:
        """The windows of ``sequences`` packed into batches of at most ``batch_tokens`` padded tokens.

        Longest first, so each batch pads little; ties keep input order (deterministic batches).
        """
        windows = windows_of(sequences, self.window, self.overlap)
        order = sorted(range(len(windows)), key=lambda i: (-(windows[i].end - windows[i].start), i))
        batches: list[list[Window]] = []
        for i in order:
            w = windows[i]
            if batches and (len(batches[-1]) + 1) * (batches[-1][0].end - batches[-1][0].start) <= self.batch_tokens:
                batches[-1].append(w)
            else:
                batches.append([w])
        return batches

    def inputs(self, batch: list[Window], sequences):
        """(input_ids, attention_mask) of a batch, right-padded, on the scorer's device."""
        import torch

        length = max(w.end - w.start for w in batch)
        ids = torch.full((len(batch), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), length), dtype=torch.long)
        for b, w in enumerate(batch):
            ids[b, : w.end - w.start] = torch.tensor(sequences[w.doc][w.start : w.end])
            mask[b, : w.end - w.start] = 1
        return ids.to(self.device), mask.to(self.device)

    def score(self, sequences: Sequence[Sequence[int]]) -> list[list[float]]:
        """``out[d][p]`` = entropy of predicting token p of sequence d (p >= 1; ``out[d][0]`` is NaN)."""
        import torch

        out = [[math.nan] * len(seq) for seq in sequences]
        for batch in self.batches(sequences):
            rows, cols, targets = [], [], []
            for b, w in enumerate(batch):
                for p in range(w.own_from, w.end):
                    rows.append(b)
                    cols.append(p - 1 - w.start)
                    targets.append((w.doc, p))
            ent = self._entropies(*self.inputs(batch, sequences), torch.tensor(rows), torch.tensor(cols)).tolist()
            for (d, p), h in zip(targets, ent, strict=True):
                out[d][p] = h
        return out


class VLLMEntropyScorer:
    """Same interface on vLLM (GPU scale): top-16 prompt log-probabilities, one request per window.

    vLLM returns, for every prompt position, the log-probabilities of its 16 most likely tokens (plus the
    actual token), normalised over the full vocabulary; renormalising over the top 16 gives the same
    entropy as :func:`top_k_entropy` up to vLLM's kernels' precision.
    """

    def __init__(self, model_path: str, window: int = 1024, overlap: int = 256, **llm_kwargs):
        try:
            from vllm import LLM, SamplingParams
        except ImportError:
            raise UserError(
                "--proxy-backend vllm needs vLLM: pip install 'verl[vllm]' on a GPU machine, or use --proxy-backend hf"
            ) from None
        self.window, self.overlap = window, overlap
        if not 1 <= overlap < window:
            raise UserError(f"--window-overlap must be >= 1 and < --window-tokens ({window}), got {overlap}")
        self.llm = LLM(model=model_path, max_model_len=window + 1, **llm_kwargs)
        self.params = SamplingParams(max_tokens=1, prompt_logprobs=TOP_K)

    def score(self, sequences: Sequence[Sequence[int]]) -> list[list[float]]:
        windows = windows_of(sequences, self.window, self.overlap)
        prompts = [{"prompt_token_ids": list(sequences[w.doc][w.start : w.end])} for w in windows]
        results = self.llm.generate(prompts, self.params, use_tqdm=False)
        out = [[math.nan] * len(seq) for seq in sequences]
        for w, res in zip(windows, results, strict=True):
            for p in range(w.own_from, w.end):
                entry = res.prompt_logprobs[p - w.start]
                out[w.doc][p] = entropy_from_logprobs([lp.logprob for lp in entry.values()])
        return out


def make_scorer(backend: str, model_path: str, window: int, overlap: int, batch_tokens: int, device: str, dtype: str):
    """The scorer for ``--proxy-backend`` (``hf`` or ``vllm``)."""
    if backend == "hf":
        return HFEntropyScorer(model_path, window, overlap, batch_tokens, device, dtype)
    if backend == "vllm":
        kwargs = {} if dtype == "auto" else {"dtype": dtype}
        return VLLMEntropyScorer(model_path, window, overlap, **kwargs)
    raise UserError(f"unknown --proxy-backend {backend!r}; choose hf or vllm")
