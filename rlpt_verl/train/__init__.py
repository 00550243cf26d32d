"""Inside verl's trainer processes: the mixture dataset, the RLPT trainer and its job runner.

Light imports only (verl, torch, numpy); nothing here reads a corpus or builds tasks. The public paths
``pkg://rlpt_verl.dataset`` and ``python -m rlpt_verl.main_ppo`` are thin entry points into this package.
"""
