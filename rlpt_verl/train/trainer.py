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
  (:mod:`val_passk`; verl's ``best@k`` is a bootstrap that reads low), missing samples counted unsolved as
  verl's ``mean@N`` counts them. verl bootstraps every numeric extra key (1,000 Python iterations per prompt
  and key) while the GPUs wait; only ``acc``, ``reward`` and ``pred`` go through that here, the manager's
  other keys (guard flags, lengths, judge counters) are logged as plain means (``val-aux/{source}/{key}/mean@N``).
- ``fit``: first the judge preflight (:meth:`RLPTTrainer.judge_preflight`): every reward worker of the `rlpt`
  manager calls the judge once, before validation or rollout, so a wrong URL, model or key fails in seconds.
- Missing samples: verl 0.9.1's agent loop only logs an exception from a rollout or a reward manager (the
  judge's "looks down" error included), drops that sample and pads the batch (``is_padding``), and the
  step trains on the rest. The trainer counts real rows against ``train_batch_size`` x ``rollout.n``
  (``rlpt/rollout/missing_samples``, ``missing_share``) and stops before the update when more than
  ``data.rlpt.max_missing_share`` (0.05) are missing, naming the judge. A sample the judge gave no verdict
  (a failed call, a reply that never parsed) is raised by the `rlpt` manager, so it is one of these, never a 0.
  With ``trainer.v1.sync.parameter_sync_step`` = P each update holds train_batch_size / P prompts.
"""

from __future__ import annotations

import logging
import os

import torch
import transfer_queue as tq
from tensordict import TensorDict
from torchdata.stateful_dataloader import StatefulDataLoader
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from rlpt_verl.reward.judge_cost import judge_cost_metrics
from rlpt_verl.train.task_metrics import task_metrics
from rlpt_verl.train.task_weights import lambda_weights
from rlpt_verl.train.val_passk import pass_at_k_metrics

logger = logging.getLogger(__name__)
LAMBDA_MODES = ("mix", "weight")
ENV_FLAG = "RLPT_VERL_TRAINER"  # set while this trainer runs: the dataset refuses weight mode without it
MAX_MISSING_SHARE = 0.05
# verl bootstraps these (best@N, maj@N); every other numeric extra key is logged as a plain mean
BOOTSTRAPPED = ("acc", "reward", "pred")


class JudgePreflightError(RuntimeError):
    """A reward worker could not reach the `rlpt` judge before training started."""


def probe_batch():
    """The one-sample DataProto the preflight sends each reward worker (the manager answers it with a probe)."""
    import numpy as np
    from verl import DataProto

    from rlpt_verl.reward.rlpt_manager import PROBE_KEY

    return DataProto.from_dict(
        tensors={"probe": torch.zeros(1, 1)},
        non_tensors={"extra_info": np.array([{PROBE_KEY: True}], dtype=object)},
    )


def judge_preflight(reward_loop_manager, timeout_s: float = 300.0) -> list[dict]:
    """Ask every reward worker of an `rlpt` reward loop to call its judge once; [] for other managers.

    Each worker probes with its own URL, key and network (verl places them round-robin over the nodes), so a
    node that cannot reach the judge is found here, not after a validation pass of garbage scores. Raises
    :class:`JudgePreflightError` with the worker's one-line reason."""
    import ray

    from rlpt_verl.reward.rlpt_manager import RLPTRewardManager

    cls = getattr(reward_loop_manager, "reward_manager_cls", None)
    if not (isinstance(cls, type) and issubclass(cls, RLPTRewardManager)):
        return []
    workers = list(getattr(reward_loop_manager, "reward_loop_workers", None) or [])
    batch = probe_batch()
    refs = [w.compute_score.remote(batch) for w in workers]
    found = []
    for i, ref in enumerate(refs):
        try:
            found.append(ray.get(ref, timeout=timeout_s)["rlpt_probe"])
        except Exception as e:  # RayTaskError wraps the worker's own error; its first line says what failed
            cause = getattr(e, "cause", None) or e
            lines = [line for line in str(cause).strip().splitlines() if line.strip()]
            reason = next((line for line in reversed(lines) if "judge" in line.lower()), lines[-1] if lines else "")
            raise JudgePreflightError(
                f"RLPT judge preflight: reward worker {i} of {len(workers)} got no answer from the judge "
                f"({type(cause).__name__}: {reason.strip()[:500]}); fix the judge URL, model or key and re-run"
            ) from None
    return found


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


def prompts_per_update(config) -> int:
    """Prompts one update holds: ``train_batch_size`` / ``trainer.v1.<mode>.parameter_sync_step`` (verl 0.9.1
    ``PPOTrainer.step`` samples that many per local update)."""
    v1 = config.trainer.get("v1") or {}
    sync_step = int((v1.get(v1.get("trainer_mode", "sync")) or {}).get("parameter_sync_step", 1) or 1)
    return int(config.data.train_batch_size) // max(1, sync_step)


def plain_means(data_sources, uids, infos: dict) -> dict[str, float]:
    """``val-aux/{source}/{key}/mean@{n}`` for every numeric key verl would otherwise bootstrap (n: the most
    samples of one prompt, as verl names it); None values (samples without the key) are left out.

    >>> plain_means(["d"] * 4, ["a", "a", "b", "b"], {"acc": [1, 0, 1, 1], "too_short": [1, 0, 0, None]})
    {'val-aux/d/too_short/mean@2': 0.3333333333333333}
    """
    from collections import Counter, defaultdict
    from numbers import Real

    sums: dict[tuple[str, str], list[float]] = defaultdict(list)
    n = Counter(zip(map(str, data_sources), map(str, uids), strict=True))
    for key, values in infos.items():
        if key in BOOTSTRAPPED or len(values) != len(data_sources):
            continue
        for source, value in zip(data_sources, values, strict=True):
            if isinstance(value, Real):
                sums[(str(source), key)].append(float(value))
    most = {s: max(c for (s2, _), c in n.items() if s2 == s) for s in {s for s, _ in n}}
    return {f"val-aux/{s}/{k}/mean@{most[s]}": sum(v) / len(v) for (s, k), v in sums.items() if v}


def _rows_tokens(mask) -> list[float]:
    """Response tokens per row of a (nested or padded) response mask."""
    if getattr(mask, "is_nested", False):
        return [float(row.sum()) for row in mask.unbind()]
    return mask.sum(dim=-1).float().tolist()


def _padding(batch) -> list[bool]:
    return [bool(tag.get("is_padding", False)) for tag in batch.tags]


def _find(state, key: str):
    """(found, value) of ``key`` anywhere in a nested dataloader state dict (single- or multi-process)."""
    if isinstance(state, dict):
        if key in state:
            return True, state[key]
        for value in state.values():
            found, got = _find(value, key)
            if found:
                return True, got
    return False, None


def _has_epoch_state(obj) -> bool:
    if isinstance(obj, dict):
        return {"epoch", "yielded"} <= set(obj) or any(_has_epoch_state(v) for v in obj.values())
    return False


def check_resumable(state: dict) -> None:
    """Refuse a dataloader state that :class:`EpochSampler` cannot continue: written by verl's own sampler
    (sequential: no sampler state, so torchdata would silently restart at row 0; random: another order) or by
    an rlpt-verl from before the epoch sampler. A fresh state (nothing read yet) is fine.

    >>> check_resumable({"_sampler_iter_state": {"epoch": 1, "yielded": 4}, "_sampler_iter_yielded": 1})
    >>> nested = {"sampler_iter_state": {"epoch": 0, "yielded": 20}, "samples_yielded": 20}
    >>> check_resumable({"_sampler_iter_state": nested, "_sampler_iter_yielded": 2})
    >>> check_resumable({"_sampler_iter_state": None, "_sampler_iter_yielded": 3})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: the checkpoint's dataloader state (data.pt) was written by verl's own sampler or ...
    """
    found, sampler_state = _find(state, "_sampler_iter_state")
    if not found:
        return
    _, yielded = _find(state, "_sampler_iter_yielded")
    if _has_epoch_state(sampler_state):  # torchdata nests it under its batch sampler's "sampler_iter_state"
        return
    if not yielded:  # nothing read yet: nothing to resume
        return
    keys = "no sampler state" if sampler_state is None else f"sampler state keys {sorted(sampler_state)[:4]}"
    writer = f"verl's own sampler or an rlpt-verl without the epoch sampler ({keys})"
    raise ValueError(
        f"the checkpoint's dataloader state (data.pt) was written by {writer}, {yielded} batches into an epoch: the "
        "RLPT mixture cannot resume it at the same row. Resume with the version that wrote it, or delete data.pt "
        "in the checkpoint folder to keep the weights and restart the data order at the first batch"
    )


class EpochDataLoader(StatefulDataLoader):
    """verl's StatefulDataLoader reading through :class:`EpochSampler`; refuses a foreign resume state."""

    def load_state_dict(self, state_dict: dict) -> None:
        check_resumable(state_dict)
        super().load_state_dict(state_dict)


def epoch_dataloader(loader):
    """``loader`` again, reading through :class:`EpochSampler` when its dataset is an RLPT mixture.

    verl's sampler repeats epoch 0's indices; the mixture dataset rotates its unused rows in across
    epochs only when the index tells it the epoch. Same dataset, batch size, workers, collate function
    and ``drop_last`` as verl's loader; other datasets get ``loader`` back unchanged.
    """
    from rlpt_verl.train.epoch_sampler import EpochSampler

    dataset = loader.dataset
    if getattr(dataset, "order", None) is None or not hasattr(dataset, "epoch_order"):
        return loader
    return EpochDataLoader(
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

    # -- judge preflight ------------------------------------------------------------------------
    def fit(self, agent_loop_manager):
        found = judge_preflight(getattr(self, "reward_loop_manager", None))
        if found:
            nodes = sorted({str(f.get("node_id") or f.get("host")) for f in found})
            print(
                f"RLPT judge preflight: {found[0]['endpoint']} answered all {len(found)} reward workers "
                f"on {len(nodes)} node(s): {', '.join(n[:12] for n in nodes)}",
                flush=True,
            )
        return super().fit(agent_loop_manager)

    # -- epochs --------------------------------------------------------------------------------
    def _init_dataloader(self):
        super()._init_dataloader()
        self.train_dataloader = epoch_dataloader(self.train_dataloader)

    # -- validation: unbiased pass@k ---------------------------------------------------------------
    def _val_metrics_update(self, data_sources, sample_uids, reward_extra_infos_dict, sample_turns, **kwargs):
        boot = {k: v for k, v in reward_extra_infos_dict.items() if k in BOOTSTRAPPED}
        metrics = super()._val_metrics_update(data_sources, sample_uids, boot, sample_turns, **kwargs)
        metrics.update(plain_means(data_sources, sample_uids, reward_extra_infos_dict))
        var = "acc" if reward_extra_infos_dict.get("acc") else "reward"
        values = reward_extra_infos_dict.get(var) or []
        if values and len(values) == len(sample_uids) and all(v is not None for v in values):
            expected = kwargs.get("expected_acc_counts") if var == "acc" else None
            metrics.update(pass_at_k_metrics(data_sources, sample_uids, values, var, expected))
        return metrics

    # -- missing samples -----------------------------------------------------------------------
    def check_missing_samples(self, batch, metrics: dict) -> None:
        """Count the step's real rows against the batch verl asked for; raise before the update when too
        many are missing (verl dropped them: their rollout or reward raised)."""
        cfg = self.config
        expected = prompts_per_update(cfg) * int(cfg.actor_rollout_ref.rollout.n)
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
        padding = _padding(batch)
        metrics = task_metrics(sources, rewards, _rows_tokens(data["response_mask"]), extras, padding)
        return metrics | judge_cost_metrics(extras, padding)  # what the judge cost this step (rlpt/judge/...)
