"""Outputs appear only complete, a failed or interrupted run never damages an earlier good one, and one
command writes an output folder at a time."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from ...conftest import ctrl_c, start_interruptible


def rlpt(*args, **kw):
    return subprocess.run([sys.executable, "-m", "rlpt_verl.cli", *args], capture_output=True, text=True, **kw)


def _leftovers(folder):
    return [n for n in os.listdir(os.path.dirname(folder)) if ".tmp-" in n or n.endswith(".rlpt-lock")]


def test_a_failed_build_leaves_the_earlier_build_intact(built, tmp_path, tokenizer_dir):
    out = tmp_path / "data"
    shutil.copytree(built["dir"], out)
    before = {n: (out / n).read_bytes() for n in os.listdir(out)}
    good = "The first sentence is here. The second sentence follows it. The third sentence closes the text."
    (tmp_path / "one.jsonl").write_text(json.dumps({"text": good}) + "\n")
    p = rlpt("build", str(tmp_path / "one.jsonl"), "-o", str(out), "--tokenizer", tokenizer_dir, "--val-docs", "5")
    assert p.returncode == 2 and "no training rows" in p.stderr
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == before  # not 0-row files, not a new report
    assert _leftovers(str(out)) == []


def test_a_second_writer_is_refused_and_a_stale_lock_is_taken_over(tmp_path, pydoc_jsonl, tokenizer_dir):
    out = tmp_path / "data"
    lock = tmp_path / "data.rlpt-lock"
    lock.write_text(str(os.getpid()))  # a live process holds it
    args = ("build", pydoc_jsonl, "-o", str(out), "--tokenizer", tokenizer_dir, "--val-docs", "2", "--quiet")
    p = rlpt(*args, "--max-targets-per-doc", "1")
    assert p.returncode == 2 and f"being written by another rlpt command (pid {os.getpid()})" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and not out.exists()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(str(dead.pid))  # its process is gone
    p = rlpt(*args, "--max-targets-per-doc", "1")
    assert p.returncode == 0, p.stderr
    assert (out / "build_report.json").exists() and not lock.exists()
    os.makedirs(tmp_path / "usual")  # the staged folder becomes the output with the usual permissions
    assert os.stat(out).st_mode & 0o777 == os.stat(tmp_path / "usual").st_mode & 0o777
    assert os.stat(out / "build_report.json").st_mode & 0o777 == 0o644  # not mkstemp's 0600
    lock.write_text("another-node 12345")  # a lock from another host of a shared filesystem is not guessed at
    p = rlpt(*args, "--max-targets-per-doc", "1")
    assert p.returncode == 2 and "on another-node (pid 12345)" in p.stderr and f"remove {lock}" in p.stderr


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_an_unusable_output_is_one_line_before_any_work(tmp_path, pydoc_jsonl, where):
    (tmp_path / "f.txt").write_text("x")
    out = tmp_path / "f.txt" if where == "file" else tmp_path / "f.txt" / "out"
    t0 = time.monotonic()
    p = rlpt("build", pydoc_jsonl, "-o", str(out), "--tokenizer", "no-such/tokenizer")  # would fail later
    assert p.returncode == 2 and str(out) in p.stderr and "tokenizer" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and time.monotonic() - t0 < 60


def test_ctrl_c_stops_a_multi_process_build_at_once(tmp_path, pydoc_jsonl, tokenizer_dir):
    corpus = tmp_path / "big.jsonl"
    lines = open(pydoc_jsonl).read()
    corpus.write_text(lines * 20)
    out = tmp_path / "data"
    proc = start_interruptible(
        ["build", str(corpus), "-o", str(out), "--tokenizer", tokenizer_dir, "--workers", "2", "--val-docs", "2"]
    )
    import psutil

    deadline = time.monotonic() + 240
    busy = []
    while len(busy) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)  # until both pool workers run and have used CPU (they build documents)
        children = [c for c in psutil.Process(proc.pid).children() if "multiprocessing" in " ".join(c.cmdline())]
        busy = [c for c in children if sum(c.cpu_times()[:2]) > 2.0]
    assert proc.poll() is None and len(busy) == 2, proc.communicate()
    err, seconds = ctrl_c(proc)
    assert proc.returncode == 130, err
    assert seconds < 30 and "Traceback" not in err
    assert not out.exists() and _leftovers(str(out)) == []
