"""The `rlpt` command. User mistakes print one line and exit 2; no traceback."""

from __future__ import annotations

import argparse
import json
import sys

from .errors import JobError, UserError


def _json_dict(value: str) -> dict:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {e}") from None
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError("expected a JSON object, e.g. '{\"enable_thinking\": false}'")
    return parsed


def _add_corpus_args(p) -> None:
    """The corpus arguments `build`, `build-rpt` and `prepare` share (the readers' ReaderConfig)."""
    p.add_argument("--text-field", default="text", help="field/column holding the text (default: text)")
    p.add_argument("--id-field", default=None, help="field/column holding a document id (default: file:line)")
    p.add_argument("--max-doc-chars", type=int, default=1_000_000, help="skip larger documents (1,000,000)")


def _config(cls, args):
    """``cls`` (a config dataclass) from the parsed arguments of the same names; the rest keep their defaults."""
    from dataclasses import fields

    values = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
    return cls(**{**values, "inputs": tuple(args.inputs)})


def _add_build(sub) -> None:
    p = sub.add_parser(
        "build",
        help="turn a text corpus into RLPT ASR/MSR training and validation parquet",
        description="Split documents into sentences, build ASR and MSR prompts (RLPT, arXiv 2509.19249 §3) that "
        "fit the token budget, and write train/val pools split by document.",
    )
    p.add_argument("inputs", nargs="+", help=".jsonl/.json/.parquet/.txt files, folders, or `datasets` folders")
    p.add_argument("--output", "-o", required=True, help="output folder")
    p.add_argument("--tokenizer", required=True, help="policy tokenizer: local folder or a name in the HF cache")
    _add_corpus_args(p)
    p.add_argument("--max-prompt-tokens", type=int, default=2048, help="chat-templated prompt budget (2048)")
    p.add_argument("--reference-segments", type=int, default=3, help="ASR judge reference: s_i + k-1 more (3)")
    p.add_argument("--msr-reference-segments", type=int, default=1, help="MSR judge reference segments (1)")
    p.add_argument(
        "--max-reference-tokens",
        type=int,
        default=768,
        help="judge references keep whole segments within this many tokens; longer target sentences are "
        "dropped and counted (768)",
    )
    p.add_argument("--min-target-chars", type=int, default=20, help="shorter sentences are never targets (20)")
    p.add_argument("--max-targets-per-doc", type=int, default=0, help="sample at most N targets per doc (0=all)")
    p.add_argument("--val-docs", type=int, default=100, help="documents held out for validation (100)")
    p.add_argument(
        "--val-max-rows",
        type=int,
        default=4000,
        help="validation rows at most, half ASR and half MSR; verl sends all of validation at once (4000)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="processes on this machine (1)")
    p.add_argument("--msr-lambda", type=float, default=0.5, help="MSR weight λ recorded for the mixture (0.5)")
    p.add_argument(
        "--chat-template-kwargs",
        type=_json_dict,
        default={},
        help="JSON passed to apply_chat_template, same as verl's data.apply_chat_template_kwargs",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_build)


def _cmd_build(args) -> int:
    from .build import BuildConfig, format_summary, run_build

    cfg = _config(BuildConfig, args)
    report = run_build(cfg, quiet=args.quiet)
    print(format_summary(report, args.output))
    return 0


def _add_prepare(sub) -> None:
    p = sub.add_parser(
        "prepare",
        help="clean a raw corpus: normalise, filter, deduplicate, mask PII, decontaminate, rate quality",
        description="Stages in order, each switchable: Unicode/whitespace normalisation; Gopher-style rule filters "
        "(and --languages); exact and MinHash near-duplicate removal; PII masking with typed placeholders; "
        "13-gram decontamination against --decontaminate files; an optional LM quality rating. Writes kept/ and "
        "dropped/ as sharded parquet, prepare_report.json and prepare_report.html; resumable (rerun the same "
        "command); the kept documents feed `rlpt build OUT/kept --id-field id` directly.",
    )
    p.add_argument("inputs", nargs="+", help=".jsonl/.json/.parquet/.txt files, folders, or `datasets` folders")
    p.add_argument("--output", "-o", required=True, help="output folder (also holds the resumable work/ state)")
    _add_corpus_args(p)
    p.add_argument("--shard-docs", type=int, default=5000, help="documents per shard (5000)")
    p.add_argument("--engine", choices=("local", "ray"), default="local", help="processes here, or Ray Data")
    p.add_argument("--workers", type=int, default=1, help="parallel shards (processes, or Ray tasks)")
    p.add_argument("--ray-address", default=None, help="Ray cluster address for --engine ray (default: local)")
    p.add_argument("--no-normalize", action="store_true", help="skip Unicode/whitespace normalisation")
    p.add_argument("--unicode-form", default="NFC", choices=("NFC", "NFKC"), help="normal form (NFC)")
    p.add_argument("--no-filters", action="store_true", help="skip the rule-based filters")
    p.add_argument("--min-words", type=int, default=50, help="filter: fewer words is dropped (50)")
    p.add_argument("--min-stop-words", type=int, default=2, help="filter: English stop words needed (2; 0=off)")
    p.add_argument("--languages", default="", help="keep only these languages, e.g. en,de (needs py3langid)")
    p.add_argument("--min-language-score", type=float, default=0.65)
    p.add_argument("--no-exact-dedup", action="store_true")
    p.add_argument("--no-near-dedup", action="store_true")
    p.add_argument("--dedup-threshold", type=float, default=0.8, help="Jaccard threshold of near duplicates (0.8)")
    p.add_argument("--num-perm", type=int, default=128, help="MinHash permutations (128)")
    p.add_argument("--shingle-words", type=int, default=5, help="words per shingle (5)")
    p.add_argument("--no-pii", action="store_true", help="keep PII unmasked")
    p.add_argument("--decontaminate", nargs="*", default=[], help="evaluation set files (.jsonl/.json/.parquet/.txt)")
    p.add_argument("--decontam-ngram", type=int, default=13, help="word n-gram length (13)")
    p.add_argument("--quality-url", default="", help="OpenAI-compatible base URL of the quality rater (off if empty)")
    p.add_argument("--quality-model", default="", help="the rater's served model name")
    p.add_argument("--quality-threshold", type=int, default=3, help="drop documents rated below this, 0-5 (3)")
    p.add_argument("--quality-concurrency", type=int, default=16)
    p.add_argument("--quality-api-key-env", default=None, help="environment variable holding the API key")
    p.add_argument("--seed", type=int, default=1, help="MinHash permutation seed (1)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_prepare)


def _cmd_prepare(args) -> int:
    from .data_tools.decontam import DecontamConfig
    from .data_tools.dedup import DedupConfig
    from .data_tools.filters import FilterConfig
    from .data_tools.normalize import NormalizeConfig
    from .data_tools.prepare import PrepareConfig, run_prepare
    from .data_tools.quality import QualityConfig
    from .data_tools.report import format_summary

    languages = tuple(x.strip() for x in args.languages.split(",") if x.strip())
    dedup = None
    if not (args.no_exact_dedup and args.no_near_dedup):
        dedup = DedupConfig(
            exact=not args.no_exact_dedup,
            near=not args.no_near_dedup,
            threshold=args.dedup_threshold,
            num_perm=args.num_perm,
            ngram=args.shingle_words,
            seed=args.seed,
        )
    quality = None
    if args.quality_url or args.quality_model:
        quality = QualityConfig(
            base_url=args.quality_url,
            model=args.quality_model,
            threshold=args.quality_threshold,
            concurrency=args.quality_concurrency,
            api_key_env=args.quality_api_key_env,
        )
    cfg = PrepareConfig(
        inputs=tuple(args.inputs),
        output=args.output,
        text_field=args.text_field,
        id_field=args.id_field,
        max_doc_chars=args.max_doc_chars,
        shard_docs=args.shard_docs,
        engine=args.engine,
        workers=args.workers,
        ray_address=args.ray_address,
        normalize=None if args.no_normalize else NormalizeConfig(form=args.unicode_form),
        filters=None
        if args.no_filters
        else FilterConfig(
            min_words=args.min_words,
            min_stop_words=args.min_stop_words,
            languages=languages,
            min_language_score=args.min_language_score,
        ),
        dedup=dedup,
        pii=not args.no_pii,
        decontam=DecontamConfig(eval_sets=tuple(args.decontaminate), ngram=args.decontam_ngram)
        if args.decontaminate
        else None,
        quality=quality,
    )
    if languages and args.no_filters:
        raise UserError("--languages is part of the filter stage: drop --no-filters")
    report = run_prepare(cfg, quiet=args.quiet)
    print(format_summary(report, args.output))
    return 0


def _add_build_rpt(sub) -> None:
    p = sub.add_parser(
        "build-rpt",
        help="turn a text corpus into RPT next-token tasks at high-entropy positions",
        description="Score every position with a proxy LM (top-16 entropy, one forward pass per window), keep "
        "positions above --entropy-threshold, and write RPT prompts (arXiv 2506.08007 §3) with the true "
        "continuation and its policy-token byte boundaries: train.parquet and val_{easy,medium,hard}.parquet "
        "(entropy > 0.5/1.0/1.5).",
    )
    p.add_argument("inputs", nargs="+", help=".jsonl/.json/.parquet/.txt files, folders, or `datasets` folders")
    p.add_argument("--output", "-o", required=True, help="output folder")
    p.add_argument("--tokenizer", required=True, help="policy tokenizer: local folder or a name in the HF cache")
    p.add_argument("--proxy-model", required=True, help="local folder of the small causal LM that scores entropy")
    p.add_argument("--proxy-backend", choices=("hf", "vllm"), default="hf", help="transformers (hf) or vLLM on GPU")
    _add_corpus_args(p)
    p.add_argument(
        "--template", choices=("v0", "v6"), default="v0", help="RPT prompt (arXiv 2506.08007): v0 (training) or v6"
    )
    p.add_argument("--max-prompt-tokens", type=int, default=4096, help="chat-templated prompt budget (4096)")
    p.add_argument("--entropy-threshold", type=float, default=0.5, help="keep positions above this, nats (0.5)")
    p.add_argument("--max-positions-per-doc", type=int, default=16, help="seeded sample per document (16; 0=all)")
    p.add_argument("--min-context-tokens", type=int, default=16, help="policy tokens before a position (16)")
    p.add_argument("--continuation-tokens", type=int, default=16, help="ground-truth tokens stored (16)")
    p.add_argument("--val-docs", type=int, default=100, help="documents held out for validation (100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--window-tokens", type=int, default=1024, help="proxy forward-pass window (1024)")
    p.add_argument("--window-overlap", type=int, default=256, help="left context shared by adjacent windows (256)")
    p.add_argument("--batch-tokens", type=int, default=16384, help="padded tokens per forward pass (16384)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16")
    p.add_argument("--chat-template-kwargs", type=_json_dict, default={}, help="JSON for apply_chat_template")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_build_rpt)


def _cmd_build_rpt(args) -> int:
    from .rpt_build import RPTBuildConfig, format_summary, run_build_rpt

    if args.dtype not in ("auto", "float32", "bfloat16", "float16"):
        raise UserError(f"--dtype must be auto, float32, bfloat16 or float16, got {args.dtype!r}")
    cfg = _config(RPTBuildConfig, args)
    report = run_build_rpt(cfg, quiet=args.quiet)
    print(format_summary(report, args.output))
    return 0


def _add_doctor(sub) -> None:
    p = sub.add_parser(
        "doctor",
        help="check the installation, or a recipe with your overrides",
        description="Without RECIPE: versions and verl plugin registration here and in a Ray worker. With RECIPE "
        "(a shipped recipe name such as rlpt_grpo_fsdp, or a YAML path) and Hydra overrides: compose it against "
        "verl 0.9.1 and report legacy keys, a bypassed or sleeping judge, an inexact λ, a prompt budget smaller "
        "than the built data and missing data files.",
    )
    p.add_argument("recipe", nargs="?", help="recipe name or YAML path (optional)")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, as for verl.trainer.main_ppo")
    p.add_argument("--no-ray", action="store_true", help="skip the check inside a Ray worker process")
    p.set_defaults(func=_cmd_doctor)


def _cmd_doctor(args) -> int:
    if args.recipe:
        from .recipe_check import check_config, compose_recipe

        problems = check_config(compose_recipe(args.recipe, list(args.overrides)))
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        print(f"{args.recipe}: " + (f"{len(problems)} problem(s)" if problems else "no problems found"))
        return 1 if problems else 0
    from .doctor import run_doctor

    return run_doctor(check_ray=not args.no_ray)


def _add_judge_eval(sub) -> None:
    p = sub.add_parser(
        "judge-eval",
        help="agreement of a judge server with labelled cases, through the training reward path",
        description="Score labelled (prediction or response, reference, label) JSON Lines with the `rlpt` reward "
        "manager inside verl's RewardLoopWorker; report accuracy, precision, recall, confusion matrix, judge calls "
        "made and avoided, errors, throughput and latency percentiles.",
    )
    p.add_argument("cases", help="JSON Lines: reference, label (0/1), and prediction or response")
    p.add_argument("--judge-url", required=True, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--judge-model", required=True, help="the served model name")
    p.add_argument("--tokenizer", required=True, help="policy tokenizer (local folder or a name in the HF cache)")
    p.add_argument(
        "--reward-kwargs",
        type=_json_dict,
        default={},
        help="more reward.reward_kwargs as JSON, e.g. '{\"judge_concurrency\": 64}'",
    )
    p.add_argument("--output", help="also write the full report (with per-case verdicts) as JSON here")
    p.set_defaults(func=_cmd_judge_eval)


def _cmd_judge_eval(args) -> int:
    from .judge_eval import failure_line, format_report, run_judge_eval
    from .paths import check_output_file, write_json_atomic

    output = check_output_file(args.output) if args.output else None  # before any judging
    report = run_judge_eval(args.cases, args.judge_url, args.judge_model, args.tokenizer, args.reward_kwargs)
    if output:  # whatever was scored is written first, even when the judge failed
        write_json_atomic(output, report)
    print(format_report(report))
    if output:
        print(f"wrote {output}")
    line = failure_line(report)
    if line:
        raise JobError(line)
    return 0


def _add_sft_data(sub) -> None:
    p = sub.add_parser(
        "sft-data",
        help="convert instruction data to verl's SFT parquet (messages column) for the cold-start SFT",
        description="Accepts messages (OpenAI roles), conversations (ShareGPT), instruction/input/output, "
        "prompt/response, prompt/completion, question/answer, query/response, or explicit fields; same inputs and "
        "bad-input rules as `rlpt build`.",
    )
    p.add_argument("inputs", nargs="+", help=".jsonl/.json/.parquet files, folders, or `datasets` folders")
    p.add_argument("--output", "-o", required=True, help="output folder (train.parquet, val.parquet, sft_report.json)")
    p.add_argument("--prompt-field", help="field holding the user prompt (with --response-field)")
    p.add_argument("--response-field", help="field holding the assistant response (with --prompt-field)")
    p.add_argument("--val-fraction", type=float, default=0.01, help="share held out by seeded hash (0.01)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_sft_data)


def _cmd_sft_data(args) -> int:
    from .sft_data import run_sft_data

    r = run_sft_data(args.inputs, args.output, args.val_fraction, args.seed, args.prompt_field, args.response_field)
    print(
        f"records read: {r['records_read']}; conversations: train={r['rows']['train']} val={r['rows']['val']}; "
        f"formats: {r['formats']}; skipped: {sum(r['skipped'].values()) + sum(r['skipped_at_read'].values())} "
        f"{ {**r['skipped'], **r['skipped_at_read']} }"
    )
    print(f"wrote train.parquet, val.parquet and sft_report.json to {args.output}")
    return 0


def _add_math_data(sub) -> None:
    p = sub.add_parser(
        "math-data",
        help="convert math question/answer data to verl's RL parquet for RLVR after RLPT",
        description="Fields problem/question/prompt/query and answer/final_answer/solution/response (a solution is "
        "reduced to its last \\boxed{}); rows are scored by verl's built-in MATH verifier.",
    )
    p.add_argument("inputs", nargs="+", help=".jsonl/.json/.parquet files, folders, or `datasets` folders")
    p.add_argument("--output", "-o", required=True, help="output folder (train.parquet, val.parquet, math_report.json)")
    p.add_argument("--question-field")
    p.add_argument("--answer-field")
    p.add_argument("--val-fraction", type=float, default=0.05, help="share held out by seeded hash (0.05)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_math_data)


def _cmd_math_data(args) -> int:
    from .math_data import run_math_data

    r = run_math_data(args.inputs, args.output, args.val_fraction, args.seed, args.question_field, args.answer_field)
    print(f"records read: {r['records_read']}; rows: {r['rows']}; skipped: {r['skipped']} {r['skipped_at_read']}")
    print(f"wrote train.parquet, val.parquet and math_report.json to {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlpt", description="RLPT/RPT data and tools for verl 0.9.1")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_prepare(sub)
    _add_build(sub)
    _add_build_rpt(sub)
    _add_sft_data(sub)
    _add_math_data(sub)
    _add_judge_eval(sub)
    _add_doctor(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:
        print(f"rlpt {args.command}: error: {e}", file=sys.stderr)
        return 2
    except JobError as e:
        print(f"rlpt {args.command}: failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"rlpt {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
