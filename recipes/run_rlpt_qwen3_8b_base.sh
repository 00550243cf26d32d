#!/usr/bin/env bash
# RLPT GRPO for Qwen/Qwen3-8B-Base on one node with 8 GPUs (FSDP), paper settings from rlpt_grpo_common.yaml.
# Rollout tensor parallel 2; actor token budget 16384 tokens per GPU (prompt 2048 + response 8192 per
# sequence, packed with dynamic batch sizes). The judge runs elsewhere (serve_judge.sh; RLPT_JUDGE_URL).
#   RLPT_DATA=data/rlpt RLPT_JUDGE_URL=http://judge:8000/v1 bash run_rlpt_qwen3_8b_base.sh [overrides...]
# Add --cfg job to print the composed configuration without GPUs.
source "$(dirname "${BASH_SOURCE[0]}")/_launch_common.sh"
launch Qwen/Qwen3-8B-Base 2 16384 "$@"
