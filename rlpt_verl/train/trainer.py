"""The RLPT trainer: verl 0.9.1's sync v1 PPO trainer plus per-task training metrics and the λ weight mode.

Not registered in verl's trainer registry (that would replace ``sync`` for every job in the process);
:mod:`rlpt_verl.main_ppo` hands it to its own task runner. The mode string stays ``sync``, which verl
reads in several places.

- ``_compute_metrics``: verl's metrics, plus :func:`task_metrics.task_metrics` from the step's rows in
  the TransferQueue (data source, sequence reward, response length and the reward manager's extra info).
- ``_compute_advantage``: first the missing-samples check (below); verl's advantages; then, with
  ``data.rlpt.lambda_mode=weight``, each row's advantages are scaled by its task weight (:mod:`task_weights`)
  so the step's loss is exactly (J_ASR + λ·J_MSR)/(1+λ) for ``actor.loss_agg_mode``.
- ``_init_dataloader``: an RLPT mixture dataset is read through :class:`EpochSampler` (see
  :func:`epoch_dataloader`), so its unused rows rotate in across epochs, resumable from verl's ``data.pt``.
- ``_val_metrics_update``: verl's validation metrics plus the unbiased ``val-core/{source}/{acc|reward}/pass@k``
  (:mod:`val_passk`; verl's ``best@k`` is a bootstrap that reads low).
- Missing samples: verl 0.9.1's agent loop only logs an exception from a rollout or a reward manager (the
  judge's "looks down" error included), drops that sample and pads the batch (``is_padding``), and the
  step trains on the rest. The trainer counts real rows against ``train_batch_size`` x ``rollout.n``
  (``rlpt/rollout/missing_samples``, ``missing_share``) and stops before the update when more than
  ``data.rlpt.max_missing_share`` (0.05) are missing, naming the judge.
"""

from __future__ import annotations

import logging
import os

import torch
import transfer_queue as tq
from tensordict import TensorDict
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from rlpt_verl.train.task_metrics import task_metrics
from rlpt_verl.train.task_weights import lambda_weights
from rlpt_verl.train.val_passk import pass_at_k_metrics

logger = logging.getLogger(__name__)
LAMBDA_MODES = ("mix", "weight")
ENV_FLAG = "RLPT_VERL_TRAINER"  # set while this trainer runs: the dataset refuses weight mode without it
MAX_MISSING_SHARE = 0.05


class MissingSamplesError(RuntimeError):
    """Too many samples of a step were dropped by verl (their rollout or reward raised)."""


def judge_hint(config) -> str:
    """Where the `rlpt` judge of ``config`` is, for error messages ("" for other reward managers)."""
    reward = config.get("reward") or {}
    manager = reward.get("reward_manager") or {}
    if manager.get("name") not in ("rlpt", "RLPTRewardManager"):
        return ""
    if (reward.get("reward_model") or {}).get("enable"):
        model = reward.reward_model.get("model_path")
        return f"the verl-managed rlpt judge ({model}) is the usual cause: check its replicas' logs"
    kwargs = reward.get("reward_kwargs") or {}
    return (
        f"the rlpt judge at {kwargs.get('judge_base_url')} (model {kwargs.get('judge_model')}) is the usual cause: "
        "a judge that looks down raises in every reward worker"
    )


def rlpt_options(config) -> dict:
    """``data.rlpt`` settings the trainer uses: lambda_mode (mix|weight) and the resolved λ."""
    from rlpt_verl.train.mixture import resolve_msr_lambda

    data = config.data
    rlpt = data.get("rlpt") or {}
    mode = str(rlpt.get("lambda_mode", "mix"))
    if mode not in LAMBDA_MODES:
        raise ValueError(f"data.rlpt.lambda_mode must be one of {LAMBDA_MODES}, got {mode!r}")
    msr_lambda, origin = resolve_msr_lambda(data)
    return {"lambda_mode": mode, "msr_lambda": msr_lambda, "lambda_from": origin}


def _rows_tokens(mask) -> list[float]:
    """Response tokens per row of a (nested or padded) response mask."""
    if getattr(mask, "is_nested", False):
        return [float(row.sum()) for row in mask.unbind()]
    return mask.sum(dim=-1).float().tolist()


def _padding(batch) -> list[bool]:
    return [bool(tag.get("is_padding", False)) for tag in batch.tags]


def epoch_dataloader(loader):
    """``loader`` again, reading through :class:`EpochSampler` when its dataset is an RLPT mixture.

    verl's sampler repeats epoch 0's indices; the mixture dataset rotates its unused rows in across
    epochs only when the index tells it the epoch. Same dataset, batch size, workers, collate function
    and ``drop_last`` as verl's loader; other datasets get ``loader`` back unchanged.
    """
    from torchdata.stateful_dataloader import StatefulDataLoader

    from rlpt_verl.train.epoch_sampler import EpochSampler

    dataset = loader.dataset
    if getattr(dataset, "order", None) is None or not hasattr(dataset, "epoch_order"):
        return loader
    return StatefulDataLoader(
        dataset=dataset,
        batch_size=loader.batch_size,
        num_workers=loader.num_workers,
        drop_last=loader.drop_last,
        collate_fn=loader.collate_fn,
        sampler=EpochSampler(len(dataset)),
    )


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

    # -- epochs --------------------------------------------------------------------------------
    def _init_dataloader(self):
        super()._init_dataloader()
        self.train_dataloader = epoch_dataloader(self.train_dataloader)

    # -- validation: unbiased pass@k ---------------------------------------------------------------
    def _val_metrics_update(self, data_sources, sample_uids, reward_extra_infos_dict, sample_turns, **kwargs):
        metrics = super()._val_metrics_update(
            data_sources, sample_uids, reward_extra_infos_dict, sample_turns, **kwargs
        )
        var = "acc" if reward_extra_infos_dict.get("acc") else "reward"
        values = reward_extra_infos_dict.get(var) or []
        if values and len(values) == len(sample_uids) and all(v is not None for v in values):
            metrics.update(pass_at_k_metrics(data_sources, sample_uids, values, var))
        return metrics

    # -- missing samples -----------------------------------------------------------------------
    def check_missing_samples(self, batch, metrics: dict) -> None:
        """Count the step's real rows against the batch verl asked for; raise before the update when too
        many are missing (verl dropped them: their rollout or reward raised)."""
        cfg = self.config
        expected = int(cfg.data.train_batch_size) * int(cfg.actor_rollout_ref.rollout.n)
        real = sum(not pad for pad in _padding(batch))
        missing = max(0, expected - real)
        share = missing / expected if expected else 0.0
        metrics["rlpt/rollout/missing_samples"] = float(missing)
        metrics["rlpt/rollout/missing_share"] = share
        limit = float((cfg.data.get("rlpt") or {}).get("max_missing_share", MAX_MISSING_SHARE))
        if share > limit:
            hint = judge_hint(cfg)
            raise MissingSamplesError(
                f"step {getattr(self, 'global_steps', '?')}: {missing} of {expected} samples are missing "
                f"({share:.0%}, more than data.rlpt.max_missing_share={limit}): verl 0.9.1 drops a sample whose "
                "rollout or reward raised (the errors are in the agent-loop workers' logs) and trains on the "
                f"rest. {hint + '. ' if hint else ''}Stopping before the update; fix it and re-run the same "
                "command to resume from the last checkpoint"
            )

    # -- λ weight mode ------------------------------------------------------------------------
    def _compute_advantage(self, batch, metrics: dict):
        self.check_missing_samples(batch, metrics)
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
