# Shared by the per-model launch scripts: one 8-GPU node, external judge (see serve_judge.sh).
# Every setting can be overridden from the command line: the caller's "$@" comes last.
# The policy starts from the cold-start SFT checkpoint (arXiv 2509.19249 §4), never the base model:
#   RLPT_SFT_CHECKPOINT=checkpoints/sft/hf (HF format, from `python -m verl.model_merger merge`).
# One node, two jobs (the default, judge URL on this host): the policy trains on GPUs 0-3 and serve_judge.sh
# serves the judge on GPUs 4-7. With the judge elsewhere (RLPT_JUDGE_URL on another host) all 8 train.
# RECIPE= picks any of the four RLPT GRPO recipes: rlpt_grpo_{fsdp,megatron}[_managed_judge]. A managed-judge
# recipe sees all 8 GPUs (verl gives 4 to the policy and 4 to its judge pool) and ignores RLPT_JUDGE_URL.
set -euo pipefail
: "${RLPT_DATA:=data/rlpt}"
: "${RLPT_JUDGE_URL:=http://127.0.0.1:8000/v1}"
: "${RLPT_JUDGE_MODEL:=Qwen/Qwen3-8B}"
: "${RECIPE:=rlpt_grpo_fsdp}"
export RLPT_DATA RLPT_JUDGE_URL RLPT_JUDGE_MODEL
PYTHON=${PYTHON:-python3}

case "$RECIPE" in
  rlpt_grpo_fsdp | rlpt_grpo_fsdp_managed_judge) OFFLOAD=actor_rollout_ref.actor.fsdp_config.param_offload=false ;;
  rlpt_grpo_megatron | rlpt_grpo_megatron_managed_judge) OFFLOAD=actor_rollout_ref.actor.megatron.param_offload=false ;;
  *)
    echo "RECIPE=$RECIPE: these launch scripts start the RLPT GRPO recipes rlpt_grpo_fsdp, rlpt_grpo_megatron and" \
      "their _managed_judge variants; run other recipes with python -m rlpt_verl.main_ppo (docs/recipes.md)" >&2
    exit 2 ;;
esac
case "$RECIPE" in
  *_managed_judge) : "${GPUS:=4}" ;;  # the recipe's judge pool takes the other 4: all 8 stay visible
  *)
    case "$RLPT_JUDGE_URL" in
      *://127.0.0.1[:/]* | *://localhost[:/]*) : "${GPUS:=4}"; : "${CUDA_VISIBLE_DEVICES:=0,1,2,3}"; export CUDA_VISIBLE_DEVICES ;;
      *) : "${GPUS:=8}" ;;
    esac ;;
esac

launch() {
  # $1 base model (sets TP and budgets), $2 rollout tensor parallel size, $3 actor tokens per GPU, rest: overrides
  local model=$1 tp=$2 tokens=$3 path
  shift 3
  path=${RLPT_SFT_CHECKPOINT:-}
  if [[ -z "$path" ]]; then
    if [[ " $* " == *" --cfg "* ]]; then
      path=$model  # printing the configuration only
    else
      echo "set RLPT_SFT_CHECKPOINT to the cold-start SFT checkpoint of $model (HF format): RLPT trains from it," \
        "not from the base model (docs/recipes.md, step 3)" >&2
      exit 2
    fi
  fi
  exec "$PYTHON" -m rlpt_verl.main_ppo \
    --config-path=pkg://rlpt_verl.recipes --config-name="$RECIPE" \
    actor_rollout_ref.model.path="$path" \
    trainer.n_gpus_per_node="$GPUS" trainer.nnodes=1 \
    actor_rollout_ref.rollout.tensor_model_parallel_size="$tp" \
    actor_rollout_ref.rollout.gpu_memory_utilization=0.7 \
    actor_rollout_ref.actor.ppo_max_token_len_per_gpu="$tokens" \
    "$OFFLOAD" \
    trainer.experiment_name="rlpt_$(basename "$model")" \
    "$@"
}
