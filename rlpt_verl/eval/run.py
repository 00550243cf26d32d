"""`rlpt eval`: benchmarks -> samples (server or given) -> verdicts -> Pass@k report (RLPT arXiv 2509.19249 §4).

Output folder:

- ``samples.jsonl``: every generated sample, appended as it arrives (the resume record, see :mod:`generate`);
- ``run.json``: the sampling settings the samples were drawn with; a resume with other settings is refused;
- ``verdicts.jsonl``: each sample's verdict (``correct``/``wrong``/``no_answer``/``unparsed``/``error``/``timeout``),
  the answer read from it (multiple choice), ``ambiguous`` when its anchors disagreed, and a GPQA item's
  ``option_order`` (source index of each shown option: 0 is the correct answer) and ``choices``;
- ``eval_report.json``, ``eval_table.md``, ``passk_<bench>.svg``: the results (written atomically, last).
"""

from __future__ import annotations

import json
import os
import platform
from collections import Counter
from dataclasses import dataclass

from rlpt_verl.errors import JobError, UserError
from rlpt_verl.eval.choices import MC_RULES, read_choice
from rlpt_verl.eval.items import (
    KOR_CATEGORIES,
    KOR_INSTRUCTION,
    MATH_INSTRUCTION,
    MC_INSTRUCTION,
    Fields,
    Item,
    ask_fingerprint,
    prompt_of,
    sample_seed,
    to_item,
)
from rlpt_verl.eval.kor import KOR_RULES, kor_grade
from rlpt_verl.eval.passk import pass_at_k
from rlpt_verl.eval.report import bench_metrics, curve_svg, table
from rlpt_verl.options import comma_list, json_object, opt
from rlpt_verl.paths import output_lock, prepare_output_dir, write_json_atomic, write_text_atomic

__all__ = ["EvalConfig", "run_eval", "EVAL_REPORT"]

EVAL_REPORT = "eval_report.json"
SAMPLING_KEYS = ("model", "n", "temperature", "top_p", "max_tokens", "seed", "chat_template_kwargs")


def k_list(value: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(x) for x in comma_list(value))
    except ValueError:
        raise ValueError(f"--k takes comma-separated integers, e.g. 1,8; got {value!r}") from None
    return ks


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    benchmarks: tuple[str, ...] = opt(
        help="benchmark files (.jsonl/.json/.parquet, compressed, or `datasets` folders), one benchmark each; "
        "records that carry `responses` (a list) or `response` are scored as given",
        positional=True,
    )
    output: str = opt(help="output folder (resumable: re-run the same command to continue)", aliases=("-o",))
    model_url: str | None = opt(None, "OpenAI-compatible server, e.g. http://HOST:8000/v1 (`vllm serve MODEL`)")
    model: str | None = opt(None, "served model name (for vLLM, what it was started with)")
    n: int = opt(64, "samples per problem (the paper: 64)")
    temperature: float = opt(0.6, "sampling temperature (the paper: 0.6)")
    top_p: float = opt(0.95, "nucleus sampling (the paper: 0.95)")
    max_tokens: int = opt(32768, "new tokens per sample (the paper: up to 32,768)")
    k: tuple[int, ...] = opt(
        (1, 8), "Pass@k values to report (unbiased estimator), e.g. 1,8,64", parse=k_list, shown_default="1,8"
    )
    seed: int = opt(0, "per-sample request seeds (servers that honour them repeat a run) and GPQA option order")
    concurrency: int = opt(16, "requests in flight")
    request_timeout: float = opt(1800.0, "seconds one sample may take before it is retried")
    api_key_env: str | None = opt(None, "environment variable holding the server's API key")
    chat_template_kwargs: dict = opt(help="JSON for the server's chat template", factory=dict, parse=json_object)
    question_field: str | None = opt(None, "field holding the question", shown_default="recognised")
    answer_field: str | None = opt(None, "field holding the answer or option key", shown_default="recognised")
    choices_field: str | None = opt(None, "field holding the options list", shown_default="recognised")
    baseline: str | None = opt(None, "folder of another `rlpt eval` run to compare with (table column, dashed curve)")
    verify_workers: int = opt(2, "Math-Verify worker processes")
    verify_timeout: float = opt(30.0, "seconds one Math-Verify check may take (then `timeout`, its worker replaced)")
    split: str | None = opt(
        None, "split of a `datasets` folder saved with several; one is read, never merged", shown_default="test"
    )

    def validate(self) -> None:
        checks = [
            (bool(self.benchmarks), "give at least one benchmark file"),
            (self.n >= 1, "--n must be >= 1"),
            (0 <= self.temperature, "--temperature must be >= 0"),
            (0 < self.top_p <= 1, "--top-p must be in (0, 1]"),
            (self.max_tokens >= 1, "--max-tokens must be >= 1"),
            (bool(self.k) and all(k >= 1 for k in self.k), "--k needs values >= 1, e.g. 1,8"),
            (all(k <= self.n for k in self.k), f"--k {max(self.k or (0,))} is above --n {self.n}: Pass@k needs k <= n"),
            (self.concurrency >= 1, "--concurrency must be >= 1"),
            (self.request_timeout > 0, "--request-timeout must be > 0"),
            (self.verify_workers >= 1, "--verify-workers must be >= 1"),
            (self.verify_timeout > 0, "--verify-timeout must be > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)

    def sampling(self) -> dict:
        return {k: getattr(self, k) for k in SAMPLING_KEYS}


def bench_name(path: str) -> str:
    """``data/aime24.jsonl.gz`` -> ``aime24``; a folder keeps its name.

    >>> bench_name("data/aime24.jsonl.gz"), bench_name("mmlu_pro/")
    ('aime24', 'mmlu_pro')
    """
    base = os.path.basename(path.rstrip("/"))
    for ext in (".gz", ".zst", ".xz", ".bz2"):
        base = base.removesuffix(ext)
    for ext in (".jsonl", ".json", ".parquet", ".txt"):
        base = base.removesuffix(ext)
    if base == "sample" and os.path.basename(os.path.dirname(os.path.abspath(path))).lower() in KOR_CATEGORIES:
        return "korbench"  # KOR-Bench's own layout: data/<category>/sample.jsonl, one benchmark in five files
    return base


def merge_korbench(benches: list[dict]) -> list[dict]:
    """KOR-Bench's category files (``data/<category>/sample.jsonl``) as one benchmark, scored per category."""
    kor = [b for b in benches if b["name"] == "korbench" and all(i.kind == "kor" for i in b["items"])]
    if len(kor) < 2:
        return benches
    merged = {
        "name": "korbench",
        "path": ", ".join(b["path"] for b in kor),
        "items": [i for b in kor for i in b["items"]],
        "given": {k: v for b in kor for k, v in b["given"].items()},
        "skipped": dict(sum((Counter(b["skipped"]) for b in kor), Counter())),
        "fields": [f for b in kor for f in b["fields"]],
    }
    if merged["given"] and len(merged["given"]) != len(merged["items"]):
        raise UserError("korbench: some category files carry responses and others do not; give all or none")
    return [b for b in benches if b not in kor] + [merged]


def load_benchmark(path: str, cfg: EvalConfig) -> dict:
    """Items of one benchmark file, the fields used, records skipped (by reason), and given responses."""
    from rlpt_verl.data_tools import ReaderConfig, RecordReader

    if not os.path.exists(path):
        raise UserError(f"benchmark {path} does not exist")
    fields = Fields(cfg.question_field, cfg.answer_field, cfg.choices_field)
    reader = RecordReader([path], ReaderConfig(split=cfg.split, prefer=("test",)))
    items: list[Item] = []
    given: dict[str, list[str]] = {}
    skipped, used = Counter(), Counter()
    seen: set[str] = set()
    source = _kor_source(path)
    first_keys: list[str] = []
    for default_id, record in reader:
        first_keys = first_keys or [str(k) for k in record][:8]
        item, info = to_item(record, default_id, fields, cfg.seed, source)
        if item is None:
            skipped[info] += 1
            continue
        if item.id in seen:
            skipped["duplicate_id"] += 1
            continue
        responses = record.get("responses", record.get("response"))
        if isinstance(responses, str):
            responses = [responses]
        if responses is not None and hasattr(responses, "__len__") and not isinstance(responses, dict):
            if not len(responses):  # an empty list scores nothing: counted, never averaged in as 0 of 0
                skipped["no_responses"] += 1
                continue
            given[item.id] = [str(r) for r in responses]
        seen.add(item.id)
        used[json.dumps(info, sort_keys=True)] += 1
        items.append(item)
    skipped.update({f"read:{k}": v for k, v in reader.stats.dropped.items()})
    if not items:
        top = skipped.most_common(1)[0][0] if skipped else ""
        hint = "name the fields with --question-field/--answer-field/--choices-field"
        if top.endswith("_field_missing"):
            flag = top[: -len("_field_missing")]
            name = getattr(fields, flag)
            hint = f"--{flag}-field {name!r} is not a field of these records (they have {', '.join(first_keys)})"
        elif top == "no_question_field":
            hint = f"no question field recognised (records have {', '.join(first_keys)}): name it with --question-field"
        raise UserError(f"no usable item in benchmark {path} (skipped: {dict(skipped)}); {hint}")
    if given and len(given) != len(items):
        raise UserError(
            f"benchmark {path}: {len(given)} of {len(items)} items carry responses; give responses for all or none"
        )
    return {
        "name": bench_name(path),
        "path": os.path.abspath(path),
        "items": items,
        "given": given,
        "skipped": dict(skipped),
        "fields": [json.loads(k) | {"items": v} for k, v in used.most_common()],
        "dataset_split": next(iter(reader.dataset_splits.values()), None),
    }


def _kor_source(path: str) -> dict:
    """KOR-Bench's layout (``data/<category>/sample.jsonl`` beside ``rule.jsonl``): the category from the folder
    and the rule texts by id, so records that carry only ``rule_id`` can be prompted."""
    folder = os.path.basename(os.path.dirname(os.path.abspath(path))).lower()
    source: dict = {"category": folder} if folder in KOR_CATEGORIES else {}
    rules_path = os.path.join(os.path.dirname(os.path.abspath(path)), "rule.jsonl")
    if os.path.isfile(rules_path) and os.path.abspath(rules_path) != os.path.abspath(path):
        rules = {}
        with open(rules_path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                    rules[str(rec["idx"])] = str(rec["rule_content"])
                except (ValueError, KeyError, TypeError):
                    continue
        source["rules"] = rules
    return source


def _run_record(out: str, cfg: EvalConfig, drawn: int) -> dict:
    """``run.json`` of an earlier run into ``out`` ({} if none): its sampling settings and server. Samples drawn
    with other settings would mix two experiments, so a different setting is refused, naming it; a run that
    drew nothing (``drawn`` 0, e.g. a mistyped --model) leaves nothing to mix and is replaced."""
    path = os.path.join(out, "run.json")
    if not os.path.exists(path) or not drawn:
        return {}
    with open(path) as fh:
        old = json.load(fh)
    before = old.get("sampling", {})
    changed = [f"{k}: {before.get(k)!r} -> {v!r}" for k, v in cfg.sampling().items() if before.get(k) != v]
    if changed:
        raise UserError(
            f"--output {out} holds samples drawn with other settings ({', '.join(changed)}); "
            "use another --output, or the same settings to continue that run"
        )
    return old


def _progress(total: int, desc: str, quiet: bool):
    from rlpt_verl.tasks.common import progress

    return progress(None, desc, quiet, unit="sample", total=total)


def run_eval(cfg: EvalConfig, quiet: bool = False) -> dict:
    cfg.validate()
    benches = merge_korbench([load_benchmark(p, cfg) for p in cfg.benchmarks])
    names = [b["name"] for b in benches]
    if len(set(names)) != len(names):
        raise UserError(f"two benchmarks share a name ({', '.join(names)}): rename one file")
    out = prepare_output_dir(cfg.output)
    baseline = _load_baseline(cfg.baseline) if cfg.baseline else None
    need_server = any(not b["given"] for b in benches)
    if need_server and not (cfg.model_url and cfg.model):
        missing = [b["name"] for b in benches if not b["given"]]
        raise UserError(f"{', '.join(missing)} carry no responses: give --model-url and --model to generate them")
    os.makedirs(out, exist_ok=True)
    with output_lock(out):
        return _run(cfg, benches, out, need_server, baseline, quiet)


def _load_baseline(folder: str) -> dict:
    path = os.path.join(folder, EVAL_REPORT)
    try:
        with open(path) as fh:
            report = json.load(fh)
        report["benchmarks"]  # noqa: B018 - the one key a baseline needs
        return report
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"--baseline {folder}: no readable {EVAL_REPORT} ({type(e).__name__}: {e})") from None


def _run(cfg: EvalConfig, benches: list[dict], out: str, need_server: bool, baseline: dict | None, quiet: bool):
    from rlpt_verl.eval.generate import SAMPLES, generate, read_samples, server_info
    from rlpt_verl.llm_client import LLMSettings

    server: dict = {}
    samples_path = os.path.join(out, SAMPLES)
    counts = {"written": 0, "failed": 0, "requests": 0, "resumed": 0, "reasked": 0}
    if need_server:
        settings = LLMSettings(
            base_url=cfg.model_url,
            model=cfg.model,
            api_key_env=cfg.api_key_env,
            concurrency=cfg.concurrency,
            timeout_s=cfg.request_timeout,
            retry_budget_s=max(30.0, 2 * cfg.request_timeout),
            stall_s=max(30.0, 2 * cfg.request_timeout),  # a server frozen mid-run ends the run in bounded time
            max_tokens=cfg.max_tokens,
            chat_template_kwargs=dict(cfg.chat_template_kwargs),
            cache_size=1,
            role="model server",
            setting_prefix="--",
        )
        try:
            settings.validate()
        except ValueError as e:
            raise UserError(str(e)) from None
        done = read_samples(samples_path)
        record = _run_record(out, cfg, len(done))
        server = record.get("server", {})
        jobs = []
        for b in benches:
            if b["given"]:
                continue
            for item in b["items"]:
                ask = ask_fingerprint(item)
                for i in range(cfg.n):
                    old = done.get((b["name"], item.id, i))
                    if old is not None and old[1] == ask:
                        counts["resumed"] += 1
                        continue
                    if old is not None:  # the benchmark file changed this item since: its samples are stale
                        counts["reasked"] += 1
                    sampling = {
                        "temperature": cfg.temperature,
                        "top_p": cfg.top_p,
                        "max_tokens": cfg.max_tokens,
                        "seed": sample_seed(cfg.seed, item.id, i),
                    }
                    extra = {"ask": ask} | ({"option_order": list(item.option_order)} if item.option_order else {})
                    jobs.append((b["name"], item.id, i, prompt_of(item), sampling, extra))
        if jobs:  # a finished run is rescored (e.g. with a new --baseline) without its server
            server = server_info(settings)
            record = {"sampling": cfg.sampling(), "model_url": cfg.model_url, "server": server}
            write_json_atomic(os.path.join(out, "run.json"), record, sort_keys=True)
            bar = _progress(len(jobs), "generate", quiet)
            try:
                got = generate(settings, jobs, samples_path, cfg.concurrency, lambda ok: bar.update(1))
            finally:
                bar.close()
            counts.update({k: got[k] for k in ("written", "failed", "requests")})
        if counts["failed"]:
            raise JobError(
                f"{counts['failed']} of {len(jobs)} samples failed at {server['url']} after retries "
                f"({counts['written']} written to {samples_path}); re-run the same command to ask for the rest"
            )
    done = read_samples(samples_path) if need_server else {}
    responses: dict[tuple[str, str], list[str]] = {}
    for b in benches:
        for item in b["items"]:
            if b["given"]:
                responses[(b["name"], item.id)] = b["given"][item.id]
            else:
                responses[(b["name"], item.id)] = [done[(b["name"], item.id, i)][0] for i in range(cfg.n)]
    verdicts = _score(benches, responses, cfg, quiet)
    report = _report(cfg, benches, responses, verdicts, server, counts, baseline)
    _write(out, report, benches, verdicts, baseline, cfg)
    return report


def _score(benches, responses, cfg: EvalConfig, quiet: bool) -> dict[tuple[str, str], list[dict]]:
    """Per sample: {"verdict", and for multiple choice "answer" (the letter read) and "ambiguous"}."""
    from rlpt_verl.eval.math_check import check_math
    from rlpt_verl.reward.rpt_reward import rpt_reward

    verdicts: dict[tuple[str, str], list[dict]] = {}
    math_jobs = []
    for b in benches:
        for item in b["items"]:
            texts = responses[(b["name"], item.id)]
            key = (b["name"], item.id)
            verdicts[key] = [{} for _ in texts]
            for i, text in enumerate(texts):
                if item.kind == "mc":
                    choice = read_choice(text, len(item.choices))
                    verdict = (
                        "unparsed"
                        if choice.letter is None
                        else ("correct" if choice.letter == item.answer else "wrong")
                    )
                    verdicts[key][i] = {"verdict": verdict, "answer": choice.letter, "ambiguous": choice.ambiguous}
                elif item.kind == "rpt":
                    score = rpt_reward(text, item.answer, item.byte_ends)
                    verdict = "unparsed" if score.prediction is None else ("correct" if score.score >= 1.0 else "wrong")
                    verdicts[key][i] = {"verdict": verdict}
                elif item.kind == "kor":
                    g = dict(item.grading)
                    how = (item.category, g.get("rule_id", ""), g.get("idx", ""))
                    verdict, job = kor_grade(text, item.answer, *how)
                    verdicts[key][i] = {"verdict": verdict}
                    if "real_life_answer" in g:  # the authors also report replies that ignore the new rule
                        verdicts[key][i]["real_life"] = kor_grade(text, g["real_life_answer"], *how)[0] == "correct"
                    if job is not None:
                        math_jobs.append(((key, i), *job))
                else:
                    math_jobs.append(((key, i), text, item.answer, dict(item.grading)))
    if math_jobs:
        bar = _progress(len(math_jobs), "verify", quiet)
        try:
            for (key, i), verdict in check_math(math_jobs, cfg.verify_workers, cfg.verify_timeout):
                verdicts[key][i] = {**verdicts[key][i], "verdict": verdict}
                bar.update(1)
        finally:
            bar.close()
    return verdicts


OUTCOMES = ("correct", "wrong", "no_answer", "unparsed", "timeout", "error")


def graders(kinds: set[str]) -> dict:
    """What read and checked the answers of a benchmark with items of ``kinds`` (named in the report)."""
    from importlib.metadata import PackageNotFoundError, version

    from rlpt_verl.eval.math_check import MATH_VERIFY_SETTINGS

    try:
        mv = version("math-verify")
    except PackageNotFoundError:
        mv = "not installed"
    out = {}
    if "math" in kinds or "kor" in kinds:
        out["math"] = {"checker": f"math-verify {mv}", **MATH_VERIFY_SETTINGS}
    if "mc" in kinds:
        out["multiple_choice"] = {"extractor": MC_RULES, "rules": "rlpt_verl.eval.choices (README, rlpt eval)"}
    if "kor" in kinds:
        out["korbench"] = {"extractor": KOR_RULES, "overall": "accuracy over all items; per category below"}
    if "rpt" in kinds:
        out["rpt"] = {"checker": "rpt reward: byte prefix of the true continuation ending on a token boundary"}
    return out


def _report(cfg, benches, responses, verdicts, server, counts, baseline) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("rlpt-verl")
    except PackageNotFoundError:
        ours = "unknown"
    report: dict = {
        "settings": {
            **cfg.sampling(),
            "k": list(cfg.k),
            "model_url": cfg.model_url,
            "verify_timeout": cfg.verify_timeout,
            "prompts": {
                "rpt": "the chat prompt stored in the row by rlpt build-rpt",
                "math": "{question}\n\n" + MATH_INSTRUCTION,
                "mc": "{question}\n\n{A. option ...}\n\n" + MC_INSTRUCTION,
                "kor": "### Rule:\n{rule}\n\n### Question:\n{question}\n\n" + KOR_INSTRUCTION,
            },
            "outcomes": "ambiguous counts multiple-choice replies whose explicit anchors named different letters; "
            "each is graded by its last one (and counted under correct or wrong as well)",
            "estimator": "unbiased pass@k = mean over items of 1 - C(n-c,k)/C(n,k) (arXiv 2107.03374)",
        },
        "server": server,
        "generation": counts,
        "versions": {"rlpt-verl": ours, "python": platform.python_version()},
        "benchmarks": {},
    }
    for b in benches:
        per_item = []
        tally = Counter()
        ambiguous = 0
        by_category: dict[str, list[tuple[int, int]]] = {}
        real_life: Counter = Counter()
        for item in b["items"]:
            v = [d["verdict"] for d in verdicts[(b["name"], item.id)]]
            ambiguous += sum(bool(d.get("ambiguous")) for d in verdicts[(b["name"], item.id)])
            real_life[item.category] += sum(bool(d.get("real_life")) for d in verdicts[(b["name"], item.id)])
            tally.update(v)
            per_item.append((len(v), v.count("correct")))
            if item.category:
                by_category.setdefault(item.category, []).append(per_item[-1])
        metrics = bench_metrics(per_item, cfg.k)
        n_min = min(n for n, _ in per_item)
        curve = [sum(pass_at_k(n, c, k) for n, c in per_item) / len(per_item) for k in range(1, n_min + 1)]
        samples = sum(n for n, _ in per_item)
        kinds = {i.kind for i in b["items"]}
        outcomes = {k: tally.get(k, 0) for k in OUTCOMES} | {"ambiguous": ambiguous}
        report["benchmarks"][b["name"]] = {
            "path": b["path"],
            "kind": sorted(kinds),
            "items": len(b["items"]),
            "n": n_min if n_min == max(n for n, _ in per_item) else f"{n_min}..{max(n for n, _ in per_item)}",
            "samples": samples,
            "responses": "given" if b["given"] else "generated",
            "metrics": metrics,
            "outcomes": outcomes,
            "verdicts": dict(sorted(tally.items())),
            "unparsed_rate": (tally["unparsed"] + tally["no_answer"]) / samples,
            "errors": tally["error"] + tally["timeout"],
            "graders": graders(kinds),
            "fields": b["fields"],
            "skipped": b["skipped"],
            "curve": curve,
            **({"dataset_split": b["dataset_split"]} if b.get("dataset_split") else {}),
        }
        if by_category:
            report["benchmarks"][b["name"]]["categories"] = {
                c: {"items": len(p), **bench_metrics(p, cfg.k)}
                | ({"real_life_answers": real_life[c]} if real_life[c] else {})
                for c, p in sorted(by_category.items())
            }
    if baseline is not None:
        report["baseline"] = {
            name: {"metrics": b.get("metrics", {}), "model": baseline.get("settings", {}).get("model")}
            for name, b in baseline["benchmarks"].items()
        }
    return report


def _write(out: str, report: dict, benches, verdicts, baseline: dict | None, cfg: EvalConfig) -> None:
    lines = []
    for b in benches:
        for item in b["items"]:
            order = (
                {"option_order": list(item.option_order), "choices": list(item.choices)} if item.option_order else {}
            )
            for i, v in enumerate(verdicts[(b["name"], item.id)]):
                lines.append(json.dumps({"bench": b["name"], "item": item.id, "i": i, **v, **order}))
    write_text_atomic(os.path.join(out, "verdicts.jsonl"), "\n".join(lines) + "\n")
    for name, b in report["benchmarks"].items():
        base_curve = ((baseline or {}).get("benchmarks", {}).get(name) or {}).get("curve")
        write_text_atomic(os.path.join(out, f"passk_{name}.svg"), curve_svg(name, b["curve"], base_curve))
    if any(not b["given"] for b in benches):
        head = f"model: {cfg.model}; n={cfg.n}, temperature={cfg.temperature}, top-p={cfg.top_p}"
        if any(b["given"] for b in benches):
            head += f" (generated benchmarks; given: {', '.join(b['name'] for b in benches if b['given'])})"
    else:  # nothing was sampled here: the sampling options were never used
        head = "responses: given (sampled elsewhere; n is the number given per item)"
    if baseline is not None:
        head += f"; baseline: {cfg.baseline} (model {baseline.get('settings', {}).get('model')})"
    write_text_atomic(os.path.join(out, "eval_table.md"), f"{head}\n\n{table(report, cfg.k, baseline)}\n")
    write_json_atomic(os.path.join(out, EVAL_REPORT), report)
