"""`make quickstart`'s module, as a user runs it with their own options."""

import subprocess
import sys


def test_an_impossible_prompt_budget_is_one_line_naming_the_option(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "rlpt_verl.tools.quickstart", "--max-prompt-tokens", "8", "--samples", "0",
         "--output", str(tmp_path / "qs")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert p.stderr.strip().splitlines() == [p.stderr.strip()] and p.stderr.startswith("quickstart: error: ")
    assert "no prompt fits --max-prompt-tokens 8" in p.stderr
