"""What ``python -m rlpt_verl.main_ppo`` runs: ``verl.trainer.main_ppo``'s job with the RLPT trainer (verl 0.9.1).

The command line (Hydra) lives in :mod:`rlpt_verl.main_ppo`; this module is the job. It differs from
verl's in two places:

- the driver, not the TaskRunner actor, resolves the config (``${oc.env:...}`` reads the shell the user
  typed in, on any cluster), starts Ray with the variables the reward needs forwarded to every worker
  (:mod:`rlpt_verl.train.cluster`; secrets never printed) and refuses a loopback judge URL on a cluster
  whose nodes are on several hosts;
- the task runner builds :class:`rlpt_verl.train.trainer.RLPTTrainer` for ``trainer.v1.trainer_mode=sync``
  instead of verl's registered ``sync`` trainer. verl's ``TaskRunnerV1`` is a Ray actor class and cannot
  be subclassed, so :class:`RLPTTaskRunner` repeats its ``run`` (verl 0.9.1, ``verl/trainer/main_ppo.py``)
  with that one change; other jobs in the same environment keep verl's trainer.
"""

from __future__ import annotations

import logging
import os
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


def _external_judge_url(config) -> str | None:
    """The external judge's URL of an `rlpt` reward config (None for a verl-managed judge or other rewards)."""
    reward = config.get("reward") or {}
    if (reward.get("reward_model") or {}).get("enable"):
        return None  # verl's router address: reachable by construction
    return (reward.get("reward_kwargs") or {}).get("judge_base_url")


def resolve_in_driver(config) -> dict[str, str]:
    """Resolve ``config`` in place, here, and return the variables to forward to every Ray worker.

    The names are read from the unresolved config first (what ``${oc.env:...}`` used), so a worker that
    re-reads one finds the driver's value too. Relative local paths become absolute against the launch
    folder (:func:`rlpt_verl.train.cluster.absolute_paths`)."""
    from rlpt_verl.train.cluster import PATH_KEYS, absolute_paths, env_names_read, forwarded_env

    names = env_names_read(OmegaConf.to_container(config, resolve=False))
    OmegaConf.resolve(config)
    values = {
        k: OmegaConf.to_container(v) if OmegaConf.is_config(v) else v
        for k in PATH_KEYS
        if (v := OmegaConf.select(config, k)) is not None
    }
    for key, path in absolute_paths(values, os.getcwd(), os.path.exists).items():
        OmegaConf.update(config, key, path, merge=False)
        print(f"RLPT: {key} = {path} (relative to {os.getcwd()}: the TaskRunner may run on another node)")
    key_env = ((config.get("reward") or {}).get("reward_kwargs") or {}).get("judge_api_key_env")
    return forwarded_env(names, key_env, os.environ)


def init_ray(config, forward: dict[str, str]) -> None:
    """``ray.init`` as verl 0.9.1's ``run_ppo`` does it (same runtime env, same kwargs), plus ``forward`` in
    every worker's environment; the printed kwargs hide secret values. Then the loopback-judge check."""
    from verl.trainer.constants_ppo import get_ppo_ray_runtime_env

    from rlpt_verl.train.cluster import loopback_judge_problem, redact_env

    if ray.is_initialized():
        if forward:
            logger.warning("Ray was already initialized: %s are not forwarded to its workers", sorted(forward))
    else:
        # the part of run_ppo that must precede ray.init (verl 0.9.1), so its variables reach the workers too
        rollout_cfg, rm = config.actor_rollout_ref.rollout, config.reward.reward_model
        if rollout_cfg.full_determinism or (rm.enable and rm.rollout.full_determinism):
            os.environ.update(VERL_FULL_DETERMINISM="1", VLLM_BATCH_INVARIANT="1", PYTHONHASHSEED=str(rollout_cfg.seed))
        loggers = config.trainer.get("logger", [])
        if "rl_insight" in ([loggers] if isinstance(loggers, str) else loggers or []):
            os.environ["VERL_RL_INSIGHT_ENABLE"] = "1"
        runtime_env = get_ppo_ray_runtime_env(config)
        kwargs = OmegaConf.to_container(config.ray_kwargs.get("ray_init", {}), resolve=True) or {}
        if (config.get("transfer_queue") or {}).get("enable"):
            runtime_env.setdefault("env_vars", {})["TRANSFER_QUEUE_ENABLE"] = "1"
        user_env = kwargs.pop("runtime_env", None) or {}
        runtime_env = OmegaConf.to_container(OmegaConf.merge(runtime_env, user_env))
        # the user's explicit runtime_env.env_vars win over what is forwarded
        runtime_env["env_vars"] = {**forward, **(runtime_env.get("env_vars") or {})}
        kwargs["runtime_env"] = runtime_env
        key_env = (config.reward.get("reward_kwargs") or {}).get("judge_api_key_env")
        shown = {**kwargs, "runtime_env": {**runtime_env, "env_vars": redact_env(runtime_env["env_vars"], [key_env])}}
        print(f"ray init kwargs: {shown}")
        if forward:
            print(f"RLPT: forwarded to every Ray worker: {sorted(forward)}")
        ray.init(**kwargs)
    addresses = [n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")]
    problem = loopback_judge_problem(_external_judge_url(config), addresses)
    if problem:
        raise ValueError(problem)


def run(config) -> None:
    """Validate ``config`` (fail here, before Ray starts, on a bad setting), then verl's run_ppo with our runner."""
    from verl.trainer.main_ppo import run_ppo
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    from rlpt_verl.train.trainer import rlpt_options

    if not config.trainer.use_v1:
        raise ValueError(
            "rlpt_verl.main_ppo runs verl's v1 trainer: set trainer.use_v1=true (the default). With verl's legacy "
            "trainer (trainer.use_v1=false) run `python -m verl.trainer.main_ppo` instead: the rlpt/rpt reward "
            "managers and the datasets work there (data.rlpt.lambda_mode=mix); lambda_mode=weight, the per-task "
            "metrics, the missing-samples check and the judge preflight need this trainer"
        )
    forward = resolve_in_driver(config)  # before anything reads a value: what the user's shell says
    auto_set_device(config)
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    options = rlpt_options(config)  # fail here, not in a Ray actor, on a bad data.rlpt setting
    from rlpt_verl.train.task_weights import lambda_problems_of

    problems = lambda_problems_of(config)  # before any rollout, not at step 1
    if problems and options["lambda_mode"] == "weight":
        raise ValueError("data.rlpt.lambda_mode=weight cannot make λ exact: " + "; ".join(problems))
    for problem in problems:
        logger.warning("RLPT: %s", problem)
    init_ray(config, forward)
    run_ppo(config, task_runner_class=RLPTTaskRunner)
