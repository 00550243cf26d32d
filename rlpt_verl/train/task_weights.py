"""λ as per-task advantage weights (λ option 2): the step's loss becomes exactly J_ASR + λ·J_MSR. Pure.

verl's PPO loss is ``agg(A_i · f(ratio_it))`` and the clipped term is positively homogeneous in the
advantage, so scaling row i's advantages by w_i > 0 scales that row's loss terms by exactly w_i.

**seq-mean-token-mean** (and ``seq-mean-token-sum``, ``seq-mean-token-sum-norm``): the loss is
(1/B)·Σ_i w_i ℓ_i over the B rows with a non-empty response, ℓ_i being row i's own aggregate. With B_A
ASR and B_M MSR rows, J_ASR = (1/B_A)·Σ_ASR ℓ_i and J_MSR = (1/B_M)·Σ_MSR ℓ_i, so

    w_ASR = B / ((1+λ)·B_A),    w_MSR = λ·B / ((1+λ)·B_M)

gives loss = (J_ASR + λ·J_MSR) / (1+λ), and the weights average 1 over the rows.

**token-mean**: the loss is (1/T)·Σ_i w_i Σ_t ℓ_it over the T response tokens of the batch. With T_A and
T_M tokens in ASR and MSR rows and J_task the token mean within the task,

    w_ASR = T / ((1+λ)·T_A),    w_MSR = λ·T / ((1+λ)·T_M)

gives the same (J_ASR + λ·J_MSR)/(1+λ), with weights averaging 1 over tokens.

Rows of other tasks and verl's padding rows keep weight 1 and are left out of B and T. The normaliser
1/(1+λ) keeps the gradient's scale that of an unweighted batch (weights are 1 when the batch already
holds the λ mix). A batch without one of the two tasks cannot express the sum: its weights stay 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

TASK_OF_SOURCE = {"rlpt_asr": "asr", "rlpt_msr": "msr"}
SEQUENCE_MODES = ("seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")
TOKEN_MODES = ("token-mean",)


@dataclass(frozen=True)
class TaskWeights:
    weights: list[float]  # one per row
    asr: float  # the weight of ASR rows (1.0 when not applied)
    msr: float
    applied: bool  # False when the batch lacks one of the tasks
    asr_rows: int
    msr_rows: int


def lambda_weights(
    data_sources: Sequence[str],
    response_tokens: Sequence[int],
    msr_lambda: float,
    loss_agg_mode: str,
    padding: Sequence[bool] | None = None,
) -> TaskWeights:
    """Per-row advantage weights that make the loss (J_ASR + λ·J_MSR)/(1+λ).

    >>> w = lambda_weights(["rlpt_asr"] * 8 + ["rlpt_msr"] * 4, [10] * 12, 0.25, "seq-mean-token-mean")
    >>> w.asr, w.msr
    (1.2, 0.6)
    >>> lambda_weights(["rlpt_asr", "rlpt_msr"], [30, 10], 1.0, "token-mean").weights
    [0.6666666666666666, 2.0]
    """
    if not msr_lambda > 0:
        raise ValueError(f"msr_lambda must be > 0, got {msr_lambda}")
    if loss_agg_mode not in SEQUENCE_MODES + TOKEN_MODES:
        raise ValueError(
            f"λ weight mode supports actor.loss_agg_mode in {SEQUENCE_MODES + TOKEN_MODES}, got {loss_agg_mode!r}"
        )
    n = len(data_sources)
    padding = list(padding) if padding is not None else [False] * n
    if not len(response_tokens) == len(padding) == n:
        raise ValueError("data_sources, response_tokens and padding must have one entry per row")
    by_sequence = loss_agg_mode in SEQUENCE_MODES
    mass = {"asr": 0.0, "msr": 0.0}
    rows = {"asr": 0, "msr": 0}
    tasks = []
    for source, tokens, pad in zip(data_sources, response_tokens, padding, strict=True):
        task = None if pad or tokens <= 0 else TASK_OF_SOURCE.get(str(source))
        tasks.append(task)
        if task:
            rows[task] += 1
            mass[task] += 1.0 if by_sequence else float(tokens)
    if not (mass["asr"] and mass["msr"]):
        return TaskWeights([1.0] * n, 1.0, 1.0, False, rows["asr"], rows["msr"])
    total = mass["asr"] + mass["msr"]
    w = {"asr": total / ((1 + msr_lambda) * mass["asr"]), "msr": msr_lambda * total / ((1 + msr_lambda) * mass["msr"])}
    return TaskWeights([w[t] if t else 1.0 for t in tasks], w["asr"], w["msr"], True, rows["asr"], rows["msr"])


def lambda_problems(
    lambda_mode: str,
    loss_agg_mode: str,
    train_batch_size: int,
    ppo_mini_batch_size: int,
    policy_loss_mode: str = "vanilla",
    loss_scale_factor: float | None = None,
) -> list[str]:
    """Why J = J_ASR + λ·J_MSR would not be exact with these settings (empty when it is).

    Both modes need one optimizer step per training step (the λ mix, or the weights, hold for the whole
    batch, not for a part of it) and verl's default clipped policy loss (positively homogeneous in the
    advantage). ``mix`` weighs tasks by batch composition, exact only when every sequence weighs the same
    (``seq-mean-token-mean``); ``weight`` supports the modes above, and ``seq-mean-token-sum-norm`` only with
    a fixed ``loss_scale_factor`` (else verl divides each micro-batch by its own padded length).

    >>> lambda_problems("mix", "seq-mean-token-mean", 512, 512)
    []
    >>> lambda_problems("weight", "seq-mean-token-sum-norm", 512, 128)[0][:60]
    'actor.ppo_mini_batch_size=128 splits each step into 4 optimi'
    """
    problems = []
    if lambda_mode not in ("mix", "weight"):
        return [f"data.rlpt.lambda_mode={lambda_mode}: use mix or weight"]
    if ppo_mini_batch_size != train_batch_size:
        problems.append(
            f"actor.ppo_mini_batch_size={ppo_mini_batch_size} splits each step into "
            f"{max(1, train_batch_size // max(1, ppo_mini_batch_size))} optimizer steps: λ holds for the whole batch, "
            f"not for each part; set it to data.train_batch_size={train_batch_size} (on-policy, as the paper)"
        )
    if policy_loss_mode != "vanilla":
        problems.append(
            f"actor.policy_loss.loss_mode={policy_loss_mode}: the exact λ assumes verl's default clipped loss "
            "(vanilla), which scales with the advantage"
        )
    if lambda_mode == "mix" and loss_agg_mode != "seq-mean-token-mean":
        problems.append(
            f"λ is not exact: actor.loss_agg_mode={loss_agg_mode}; the per-batch ASR:MSR mix weighs J_MSR by λ only "
            "with seq-mean-token-mean (or set data.rlpt.lambda_mode=weight and run python -m rlpt_verl.main_ppo)"
        )
    if lambda_mode == "weight" and loss_agg_mode not in SEQUENCE_MODES + TOKEN_MODES:
        problems.append(
            f"data.rlpt.lambda_mode=weight has no exact weights for actor.loss_agg_mode={loss_agg_mode}: "
            f"use one of {', '.join(SEQUENCE_MODES + TOKEN_MODES)}"
        )
    if lambda_mode == "weight" and loss_agg_mode == "seq-mean-token-sum-norm" and not loss_scale_factor:
        problems.append(
            "actor.loss_agg_mode=seq-mean-token-sum-norm is exact under the λ weights only with a fixed "
            "actor.loss_scale_factor (e.g. data.max_response_length); unset, verl divides each micro-batch "
            "by its own padded length"
        )
    return problems


def lambda_problems_of(config) -> list[str]:
    """:func:`lambda_problems` for a composed verl config that uses the RLPT mixture dataset or weight mode."""
    data = config.data
    rlpt = data.get("rlpt") or {}
    mode = str(rlpt.get("lambda_mode", "mix"))
    custom = data.get("custom_cls") or {}
    if mode == "mix" and custom.get("name") != "RLPTMixtureDataset":
        return []
    actor = config.actor_rollout_ref.actor
    policy_loss = actor.get("policy_loss") or {}
    problems = lambda_problems(
        mode,
        str(actor.get("loss_agg_mode")),
        int(data.train_batch_size),
        int(actor.ppo_mini_batch_size),
        str(policy_loss.get("loss_mode", "vanilla")),
        actor.get("loss_scale_factor"),
    )
    filter_groups = ((config.get("algorithm") or {}).get("filter_groups") or {}).get("enable")
    if mode == "mix" and filter_groups:
        problems.append(
            "algorithm.filter_groups.enable=true (DAPO-style dynamic sampling) drops and refills groups, so the "
            "trained batch no longer holds the dataset's ASR:MSR mix: λ is not exact in lambda_mode=mix; set "
            "data.rlpt.lambda_mode=weight (the weights follow each batch's real composition)"
        )
    return problems
