#!/usr/bin/env bash
# Launch an external OpenAI-compatible RLPT judge with vLLM on its own GPUs (judge topology (a)).
#   JUDGE_MODEL=Qwen/Qwen3-8B JUDGE_GPUS=6,7 PORT=8000 bash serve_judge.sh [extra `vllm serve` args]
# Then train with RLPT_JUDGE_URL=http://THIS_HOST:8000/v1 RLPT_JUDGE_MODEL=$JUDGE_MODEL.
# Judge prompts are short (reference of ~3 sentences + prediction) and replies are 2-8 tokens.
set -euo pipefail
MODEL=${JUDGE_MODEL:-Qwen/Qwen3-8B}
GPUS=${JUDGE_GPUS:-6,7}
TP=$(awk -F, '{print NF}' <<< "$GPUS")
CUDA_VISIBLE_DEVICES=$GPUS exec vllm serve "$MODEL" \
  --host 0.0.0.0 --port "${PORT:-8000}" \
  --tensor-parallel-size "$TP" \
  --max-model-len 4096 \
  --gpu-memory-utilization 0.9 \
  "$@"
