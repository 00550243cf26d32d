"""``data.custom_cls`` for RLPT: verl's RLHFDataset serving ASR and MSR with an exact per-batch mix.

Config (under ``data``; all optional)::

    data.custom_cls.path: pkg://rlpt_verl.dataset
    data.custom_cls.name: RLPTMixtureDataset
    data.shuffle: false            # the dataset owns the order (seeded); a sampler must not reshuffle it
    +data.rlpt.msr_lambda: 0.5     # λ, a training setting: its only home (default 0.5)
    +data.rlpt.seed: 0             # else data.seed, else 0
    +data.rlpt.lambda_mode: mix    # or `weight`: the RLPT trainer (rlpt_verl.main_ppo) weights advantages

verl builds the validation set with the same class but does not say which is which
(``create_rl_dataset`` drops ``is_train``): files equal to ``data.val_files`` are served unchanged.

Epochs: the pool that has rows to spare rotates them in across epochs (seeded; every row is used within
``mixture["epochs_to_cover"]`` epochs). verl's sampler cannot say which epoch it is, so the RLPT trainer
(``python -m rlpt_verl.main_ppo``) reads through :class:`rlpt_verl.train.epoch_sampler.EpochSampler`,
whose index ``epoch * len + i`` carries it; under verl's own trainer every epoch repeats epoch 0's rows.
"""

from __future__ import annotations

import logging
import os

from verl.utils.dataset.rl_dataset import RLHFDataset

from rlpt_verl.train.mixture import epochs_to_cover, mixture_order, msr_per_batch, resolve_msr_lambda

logger = logging.getLogger(__name__)


def _as_list(files) -> list[str]:
    if files is None:
        return []
    return [str(f) for f in ([files] if isinstance(files, str) else list(files))]


class RLPTMixtureDataset(RLHFDataset):
    """Every block of ``data.train_batch_size`` rows has exactly round(B·λ/(1+λ)) MSR prompts."""

    def _read_files_and_tokenize(self):
        super()._read_files_and_tokenize()  # also re-run on checkpoint resume, so the order is rebuilt
        self.order = None
        if self.is_validation:
            return
        rlpt_cfg = self.config.get("rlpt") or {}
        if rlpt_cfg.get("lambda_mode", "mix") == "weight" and os.environ.get("RLPT_VERL_TRAINER") != "1":
            raise ValueError(
                "data.rlpt.lambda_mode=weight needs the RLPT trainer: run `python -m rlpt_verl.main_ppo` (same "
                "arguments as verl.trainer.main_ppo); verl's own trainer would silently ignore the λ weights"
            )
        sources = self.dataframe["data_source"]
        asr = [i for i, s in enumerate(sources) if s == "rlpt_asr"]
        msr = [i for i, s in enumerate(sources) if s == "rlpt_msr"]
        other = len(sources) - len(asr) - len(msr)
        if other or not asr or not msr:
            raise ValueError(
                f"RLPTMixtureDataset needs rlpt_asr and rlpt_msr rows only; got {len(asr)} ASR, {len(msr)} MSR, "
                f"{other} other rows from {self.original_data_files} (pass train_asr.parquet and train_msr.parquet)"
            )
        batch_size = int(self.config.get("train_batch_size"))
        msr_lambda, origin = self._msr_lambda()
        seed = rlpt_cfg.get("seed", self.config.get("seed", None))
        seed = 0 if seed is None else int(seed)
        self.order = mixture_order(asr, msr, batch_size, msr_lambda, seed)
        self._pools = (asr, msr, batch_size, msr_lambda, seed)
        self._epoch_orders = {0: self.order}
        m = msr_per_batch(batch_size, msr_lambda)
        self.mixture = {
            "msr_lambda": msr_lambda,
            "lambda_from": origin,
            "batch_size": batch_size,
            "msr_per_batch": m,
            "asr_per_batch": batch_size - m,
            "effective_lambda": m / (batch_size - m),
            "batches": len(self.order) // batch_size,
            "unused_asr": len(asr) - (len(self.order) // batch_size) * (batch_size - m),
            "unused_msr": len(msr) - (len(self.order) // batch_size) * m,
            "epochs_to_cover": epochs_to_cover(len(asr), len(msr), batch_size, msr_lambda),
        }
        if self.config.get("shuffle", False):
            logger.warning("RLPTMixtureDataset: set data.shuffle=False, a shuffling sampler breaks the per-batch mix")
        print(f"RLPTMixtureDataset: {self.mixture}")
        if not self.order:
            raise ValueError(f"RLPTMixtureDataset: not enough rows for one batch of {batch_size}: {self.mixture}")

    @property
    def is_validation(self) -> bool:
        val = _as_list(self.config.get("val_files"))
        train = _as_list(self.config.get("train_files"))
        return bool(val) and _as_list(self.original_data_files) == val and val != train

    def _msr_lambda(self) -> tuple[float, str]:
        return resolve_msr_lambda(self.config)

    def __len__(self):
        return len(self.order) if self.order is not None else super().__len__()

    def epoch_order(self, epoch: int) -> list[int]:
        """Row order of ``epoch`` (0 is :attr:`order`); the last few are kept, an epoch is read in order."""
        if epoch not in self._epoch_orders:
            if len(self._epoch_orders) > 2:
                self._epoch_orders = {0: self.order}
            self._epoch_orders[epoch] = mixture_order(*self._pools, epoch=epoch)
        return self._epoch_orders[epoch]

    def __getitem__(self, item):
        if self.order is None:
            return super().__getitem__(item)
        epoch, i = divmod(int(item), len(self.order))  # EpochSampler's index: epoch * len + i
        return super().__getitem__(self.epoch_order(epoch)[i])
