"""The `rlpt` entry point itself: what every command shares."""

import json
import subprocess
import sys


def test_a_reader_that_leaves_ends_the_command_quietly_with_141(tmp_path):
    """`rlpt ... | head`: stdout is closed before the command prints its summary; no traceback, the shell's
    SIGPIPE code, and the files on disk complete."""
    bench = tmp_path / "mmlu.jsonl"
    bench.write_text(json.dumps({"question": "Q?", "choices": ["a", "b"], "answer": 1, "responses": ["B"]}) + "\n")
    argv = [sys.executable, "-m", "rlpt_verl.cli", "eval", str(bench), "-o", str(tmp_path / "o"), "--n", "1"]
    p = subprocess.Popen([*argv, "--k", "1", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()
    err = p.stderr.read().decode()
    p.wait(timeout=300)
    assert p.returncode == 141 and "Traceback" not in err and "BrokenPipe" not in err, err
    assert json.load(open(tmp_path / "o" / "eval_report.json"))["benchmarks"]["mmlu"]["metrics"]["pass@1"] == 1.0
