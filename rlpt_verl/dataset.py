"""Public path ``data.custom_cls.path=pkg://rlpt_verl.dataset``; the class is in :mod:`rlpt_verl.train.dataset`."""

from rlpt_verl.train.dataset import RLPTMixtureDataset

__all__ = ["RLPTMixtureDataset"]
