#!/usr/bin/env bash
# Launch an external OpenAI-compatible RLPT judge with vLLM on its own GPUs (judge topology (a)).
#   JUDGE_MODEL=Qwen/Qwen3-8B PORT=8000 bash serve_judge.sh [extra `vllm serve` args]
# One node, two jobs (the default): the judge takes GPUs 4-7 (two replicas of TP 2 behind one port), the
# launch scripts train on GPUs 0-3 against http://127.0.0.1:8000/v1. A judge node of its own: JUDGE_GPUS=0,1,...
# and train with RLPT_JUDGE_URL=http://THIS_HOST:8000/v1 RLPT_JUDGE_MODEL=$JUDGE_MODEL GPUS=8.
# Judge prompts are short (reference of ~3 sentences + prediction) and replies are 2-8 tokens.
set -euo pipefail
MODEL=${JUDGE_MODEL:-Qwen/Qwen3-8B}
GPUS=${JUDGE_GPUS:-4,5,6,7}
N=$(awk -F, '{print NF}' <<< "$GPUS")
TP=${JUDGE_TP:-$(( N >= 2 ? 2 : 1 ))}
CUDA_VISIBLE_DEVICES=$GPUS exec vllm serve "$MODEL" \
  --host 0.0.0.0 --port "${PORT:-8000}" \
  --tensor-parallel-size "$TP" --data-parallel-size "$(( N / TP ))" \
  --max-model-len 4096 \
  --gpu-memory-utilization 0.9 \
  "$@"
