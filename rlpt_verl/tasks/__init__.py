"""Offline: corpus -> verl parquet (the `rlpt build`, `build-rpt`, `sft-data` and `math-data` commands).

Runs on a workstation or a CPU node before training; never imported inside verl's trainer or reward workers.
Builders share :mod:`rlpt_verl.tasks.common`; what they hand to training is described in :mod:`rlpt_verl.reports`.
"""
