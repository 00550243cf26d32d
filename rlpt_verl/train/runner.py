"""What ``python -m rlpt_verl.main_ppo`` runs: ``verl.trainer.main_ppo``'s job with the RLPT trainer (verl 0.9.1).

The command line (Hydra) lives in :mod:`rlpt_verl.main_ppo`; this module is the job. The only difference
from verl's is the task runner, which builds :class:`rlpt_verl.train.trainer.RLPTTrainer`
for ``trainer.v1.trainer_mode=sync`` instead of verl's registered ``sync`` trainer. verl's
``TaskRunnerV1`` is a Ray actor class and cannot be subclassed, so :class:`RLPTTaskRunner` repeats its
``run`` (verl 0.9.1, ``verl/trainer/main_ppo.py``) with that one change; other jobs in the same
environment keep verl's trainer.
"""

from __future__ import annotations

import logging
from pprint import pprint

import ray
from omegaconf import DictConfig, OmegaConf

logger = logging.getLogger(__name__)


def trainer_class(config):
    """The trainer for ``config``: ours for the sync v1 mode, verl's registered one otherwise."""
    from verl.trainer.ppo.v1 import get_trainer_cls

    from rlpt_verl.train.trainer import RLPTTrainer, rlpt_options

    mode = config.trainer.v1.trainer_mode
    if mode == "sync":
        return RLPTTrainer
    if rlpt_options(config)["lambda_mode"] == "weight":
        raise ValueError(f"data.rlpt.lambda_mode=weight needs trainer.v1.trainer_mode=sync, got {mode!r}")
    logger.warning("RLPT per-task training metrics need trainer.v1.trainer_mode=sync; running verl's %r trainer", mode)
    return get_trainer_cls(mode)


@ray.remote
class RLPTTaskRunner:
    """verl 0.9.1's ``TaskRunnerV1`` with the trainer class chosen by :func:`trainer_class`."""

    def __init__(self):
        self.config = None
        self.trainer = None
        self.agent_loop_manager = None

    def init_agent_loop_manager(self):
        from verl.trainer.ppo.v1 import AgentLoopManagerTQ
        from verl.utils.import_utils import load_class_from_fqn

        manager_class_fqn = self.config.actor_rollout_ref.rollout.get("agent", {}).get("agent_loop_manager_class")
        cls = load_class_from_fqn(manager_class_fqn, "AgentLoopManager") if manager_class_fqn else AgentLoopManagerTQ
        self.agent_loop_manager = cls.create(
            config=self.config,
            llm_client=self.trainer.get_llm_client(),
            teacher_client=self.trainer.get_teacher_client(),
            reward_loop_worker_handles=self.trainer.get_reward_handles(),
        )

    def run(self, config: DictConfig):
        import transfer_queue as tq
        from verl.utils.logging_utils import configure_verl_logging

        configure_verl_logging()
        trainer_cls = trainer_class(config)
        config.transfer_queue.enable = True
        pprint(OmegaConf.to_container(config, resolve=True))
        OmegaConf.resolve(config)
        self.config = config
        tq.init(config.transfer_queue)
        succeeded = False
        try:
            self.trainer = trainer_cls(config=config)
            self.trainer.init()
            self.init_agent_loop_manager()
            self.trainer.fit(self.agent_loop_manager)
            succeeded = True
        finally:
            try:
                tracking = getattr(self.trainer, "logger", None)
                if tracking is not None:
                    tracking.finish(exit_code=0 if succeeded else 1)
            finally:
                tq.close()


def run(config) -> None:
    """Validate ``config`` (fail here, before Ray starts, on a bad setting), then verl's run_ppo with our runner."""
    from verl.trainer.main_ppo import run_ppo
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    from rlpt_verl.train.trainer import rlpt_options

    auto_set_device(config)
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    options = rlpt_options(config)  # fail here, not in a Ray actor, on a bad data.rlpt setting
    from rlpt_verl.train.task_weights import lambda_problems_of

    problems = lambda_problems_of(config)  # before any rollout, not at step 1
    if problems and options["lambda_mode"] == "weight":
        raise ValueError("data.rlpt.lambda_mode=weight cannot make λ exact: " + "; ".join(problems))
    for problem in problems:
        logger.warning("RLPT: %s", problem)
    if not config.trainer.use_v1:
        raise ValueError("rlpt_verl.main_ppo runs verl's v1 trainer: set trainer.use_v1=true (the default)")
    run_ppo(config, task_runner_class=RLPTTaskRunner)
