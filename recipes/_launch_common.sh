# Shared by the per-model launch scripts: one 8-GPU node, external judge (see serve_judge.sh).
# Every setting can be overridden from the command line: the caller's "$@" comes last.
set -euo pipefail
: "${RLPT_DATA:=data/rlpt}"
: "${RLPT_JUDGE_URL:=http://127.0.0.1:8000/v1}"
: "${RLPT_JUDGE_MODEL:=Qwen/Qwen3-8B}"
: "${RECIPE:=rlpt_grpo_fsdp}"
export RLPT_DATA RLPT_JUDGE_URL RLPT_JUDGE_MODEL
PYTHON=${PYTHON:-python3}

launch() {
  # $1 model, $2 rollout tensor parallel size, $3 max token budget per GPU for the actor, rest: overrides
  local model=$1 tp=$2 tokens=$3
  shift 3
  exec "$PYTHON" -m rlpt_verl.main_ppo \
    --config-path=pkg://rlpt_verl.recipes --config-name="$RECIPE" \
    actor_rollout_ref.model.path="$model" \
    trainer.n_gpus_per_node="${GPUS:-8}" trainer.nnodes=1 \
    actor_rollout_ref.rollout.tensor_model_parallel_size="$tp" \
    actor_rollout_ref.rollout.gpu_memory_utilization=0.7 \
    actor_rollout_ref.actor.ppo_max_token_len_per_gpu="$tokens" \
    actor_rollout_ref.actor.fsdp_config.param_offload=false \
    trainer.experiment_name="rlpt_$(basename "$model")" \
    "$@"
}
