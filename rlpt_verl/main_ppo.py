"""``python -m rlpt_verl.main_ppo``: ``verl.trainer.main_ppo`` with the RLPT trainer (verl 0.9.1).

The same command line and config surface (Hydra, ``--config-path``/``--config-name``, overrides,
``--cfg job``); the job itself is :func:`rlpt_verl.train.runner.run`.
"""

from __future__ import annotations

import hydra


@hydra.main(config_path="pkg://verl.trainer.config", config_name="ppo_trainer", version_base=None)
def main(config) -> None:
    from rlpt_verl.train.runner import run

    run(config)


if __name__ == "__main__":
    main()
