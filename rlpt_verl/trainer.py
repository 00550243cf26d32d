"""The RLPT trainer: verl 0.9.1's sync v1 PPO trainer plus per-task training metrics and the λ weight mode.

Not registered in verl's trainer registry (that would replace ``sync`` for every job in the process);
:mod:`rlpt_verl.main_ppo` hands it to its own task runner. The mode string stays ``sync``, which verl
reads in several places.

- ``_compute_metrics``: verl's metrics, plus :func:`task_metrics.task_metrics` from the step's rows in
  the TransferQueue (data source, sequence reward, response length and the reward manager's extra info).
- ``_compute_advantage``: verl's advantages; then, with ``data.rlpt.lambda_mode=weight``, each row's
  advantages are scaled by its task weight (:mod:`task_weights`) so the step's loss is exactly
  (J_ASR + λ·J_MSR)/(1+λ) for ``actor.loss_agg_mode``.
"""

from __future__ import annotations

import logging
import os

import torch
import transfer_queue as tq
from tensordict import TensorDict
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from .task_metrics import task_metrics
from .task_weights import lambda_weights

logger = logging.getLogger(__name__)
LAMBDA_MODES = ("mix", "weight")
ENV_FLAG = "RLPT_VERL_TRAINER"  # set while this trainer runs: the dataset refuses weight mode without it


def rlpt_options(config) -> dict:
    """``data.rlpt`` settings the trainer uses: lambda_mode (mix|weight) and the resolved λ."""
    from .dataset import resolve_msr_lambda

    data = config.data
    rlpt = data.get("rlpt") or {}
    mode = str(rlpt.get("lambda_mode", "mix"))
    if mode not in LAMBDA_MODES:
        raise ValueError(f"data.rlpt.lambda_mode must be one of {LAMBDA_MODES}, got {mode!r}")
    msr_lambda, origin = resolve_msr_lambda(data, data.get("train_files"))
    return {"lambda_mode": mode, "msr_lambda": msr_lambda, "lambda_from": origin}


def _rows_tokens(mask) -> list[float]:
    """Response tokens per row of a (nested or padded) response mask."""
    if getattr(mask, "is_nested", False):
        return [float(row.sum()) for row in mask.unbind()]
    return mask.sum(dim=-1).float().tolist()


def _padding(batch) -> list[bool]:
    return [bool(tag.get("is_padding", False)) for tag in batch.tags]


class RLPTTrainer(PPOTrainerSync):
    """verl's sync PPO trainer with RLPT's per-task metrics and λ weight mode."""

    def __init__(self, config):
        os.environ[ENV_FLAG] = "1"
        super().__init__(config)

    @property
    def rlpt(self) -> dict:
        if getattr(self, "_rlpt", None) is None:
            self._rlpt = rlpt_options(self.config)
        return self._rlpt

    # -- λ weight mode ------------------------------------------------------------------------
    def _compute_advantage(self, batch, metrics: dict):
        batch = super()._compute_advantage(batch, metrics)
        if self.rlpt["lambda_mode"] == "weight":
            self._apply_lambda_weights(batch, metrics)
        return batch

    def _apply_lambda_weights(self, batch, metrics: dict) -> None:
        data = tq.kv_batch_get(
            keys=batch.keys,
            partition_id=batch.partition_id,
            select_fields=["advantages", "response_mask", "data_source"],
        )
        sources = [str(x) for x in data.get("data_source").tolist()]  # item access gives a LinkedList
        result = lambda_weights(
            sources,
            _rows_tokens(data["response_mask"]),
            self.rlpt["msr_lambda"],
            self.config.actor_rollout_ref.actor.loss_agg_mode,
            _padding(batch),
        )
        metrics.update(
            {
                "rlpt/lambda/weight_asr": result.asr,
                "rlpt/lambda/weight_msr": result.msr,
                "rlpt/lambda/applied": float(result.applied),
                "rlpt/lambda/batch_msr_per_asr": result.msr_rows / result.asr_rows if result.asr_rows else 0.0,
            }
        )
        if not result.applied:
            logger.warning(
                "λ weights not applied: the batch has %s ASR and %s MSR rows", result.asr_rows, result.msr_rows
            )
            return
        advantages = data["advantages"]
        scaled = [row * w for row, w in zip(advantages.unbind(), result.weights, strict=True)]
        nested = torch.nested.as_nested_tensor(scaled, layout=torch.jagged)
        tq.kv_batch_put(
            keys=batch.keys,
            partition_id=batch.partition_id,
            fields=TensorDict({"advantages": nested}, batch_size=len(batch)),
        )

    # -- per-task metrics ---------------------------------------------------------------------
    def _compute_metrics(self, batch, metrics, timing_raw, global_steps, epoch):
        super()._compute_metrics(batch, metrics, timing_raw, global_steps, epoch)
        metrics.update(self.rlpt_task_metrics(batch))

    def rlpt_task_metrics(self, batch) -> dict[str, float]:
        """Per-task metrics of the step's rows, read from the TransferQueue."""
        data = tq.kv_batch_get(
            keys=batch.keys,
            partition_id=batch.partition_id,
            select_fields=["data_source", "rm_scores", "response_mask", "extra_fields"],
        )
        scores = data["rm_scores"]
        rewards = [float(r.sum()) for r in (scores.unbind() if scores.is_nested else scores)]
        extras = [
            (e.get("reward_extra_info") or {}) if isinstance(e, dict) else {} for e in data.get("extra_fields").tolist()
        ]
        sources = [str(x) for x in data.get("data_source").tolist()]
        return task_metrics(sources, rewards, _rows_tokens(data["response_mask"]), extras, _padding(batch))
