#!/usr/bin/env bash
# RPT GRPO for DeepSeek-R1-Distill-Qwen-14B on one node with 8 GPUs (FSDP), the paper's settings
# (rpt_grpo_fsdp.yaml): 1,000 steps, dynamic sampling from step 500.
#
# verl 0.9.1 fixes dynamic sampling (algorithm.filter_groups) when the trainer starts, so "from step 500"
# is two runs of one experiment: phase 1 trains steps 1-500 and checkpoints at 500; phase 2 resumes from
# that checkpoint (trainer.resume_mode=auto: weights, optimizer, dataloader position and step counter)
# with filter_groups on, and trains to step 1,000. The learning rate is constant, so nothing else changes.
#   RPT_DATA=data/rpt bash run_rpt_r1_distill_qwen_14b.sh [overrides...]
#   PHASE=1 or PHASE=2 runs one phase only (default: both).   Add --cfg job to print the composed config.
set -euo pipefail
: "${RPT_DATA:=data/rpt}"
export RPT_DATA
PYTHON=${PYTHON:-python3}
MODEL=${MODEL:-deepseek-ai/DeepSeek-R1-Distill-Qwen-14B}

run() {
  "$PYTHON" -m rlpt_verl.main_ppo \
    --config-path=pkg://rlpt_verl.recipes --config-name=rpt_grpo_fsdp \
    actor_rollout_ref.model.path="$MODEL" \
    trainer.n_gpus_per_node="${GPUS:-8}" trainer.nnodes=1 \
    actor_rollout_ref.rollout.tensor_model_parallel_size=2 \
    actor_rollout_ref.rollout.gpu_memory_utilization=0.7 \
    actor_rollout_ref.actor.ppo_max_token_len_per_gpu=16384 \
    actor_rollout_ref.actor.fsdp_config.param_offload=true \
    actor_rollout_ref.actor.fsdp_config.optimizer_offload=true \
    trainer.experiment_name="rpt_$(basename "$MODEL")" \
    trainer.resume_mode=auto \
    "$@"
}

PHASE=${PHASE:-all}
if [[ "$PHASE" == all || "$PHASE" == 1 ]]; then
  # phase 1: steps 1-500, plain GRPO; verl always checkpoints the last step
  run trainer.total_training_steps=500 "$@"
fi
if [[ "$PHASE" == all || "$PHASE" == 2 ]]; then
  # phase 2: resume at step 500 with dynamic sampling, on to step 1,000
  run trainer.total_training_steps=1000 algorithm.filter_groups.enable=true algorithm.filter_groups.metric=acc "$@"
fi
