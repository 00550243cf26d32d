"""Recipe YAMLs and launch scripts; installed as ``rlpt_verl.recipes`` so Hydra finds them via ``pkg://``."""
