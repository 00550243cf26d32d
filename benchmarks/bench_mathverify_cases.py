"""`rlpt eval`'s maths grader on answer-checking cases another project wrote: Math-Verify's own test suite.

Math-Verify (Hugging Face) publishes its tests in its PyPI sdist: hundreds of (gold, prediction, expected)
cases, many from real model outputs (``test_open_thoughts.py``, ``test_numina_cases.py``). This script
downloads that sdist from PyPI (the installed version; cached in $RLPT_CACHE/pypi, never in the repo),
reads the cases from the test files' ``pytest.mark.parametrize`` literals (``ast.literal_eval``: nothing is
executed), and grades every prediction as `rlpt eval` grades a reply (``verify_one``: the final answer is
read from the reply, then Math-Verify checks it against the gold). Baseline in the same run: the
suite's own helper settings (Math-Verify's ``parse``/``verify`` on both strings with ``boxed_match_priority
0``), which the suite was written for. It prints both agreement rates and lists every case where ours
disagrees with the expected verdict.

    python benchmarks/bench_mathverify_cases.py [--show 40]
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import os
import tarfile

from rlpt_verl.boxes import final_boxed
from rlpt_verl.eval.math_check import verify_one
from rlpt_verl.tools import assets

FILES = ("test_all.py", "test_open_thoughts.py", "test_numina_cases.py", "test_yujianll.py", "test_boxed.py")
ARGS = {"gold,pred,expected", "gold, pred, expected"}


def sdist_cases() -> dict[str, list[tuple[str, str, int]]]:
    """{test file: [(gold, pred, expected)]} from the installed Math-Verify version's sdist."""
    version = importlib.metadata.version("math-verify")
    dest = os.path.join(assets.cache_dir(), "pypi", f"math-verify-{version}-sdist")
    archive = None
    if os.path.isdir(dest):
        archive = next((os.path.join(dest, f) for f in os.listdir(dest) if f.endswith(".tar.gz")), None)
    if archive is None:
        import subprocess
        import sys

        os.makedirs(dest, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"math-verify=={version}",
                "-d",
                dest,
            ],
            check=True,
        )
        archive = next(os.path.join(dest, f) for f in os.listdir(dest) if f.endswith(".tar.gz"))
    out: dict[str, list[tuple[str, str, int]]] = {}
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            name = os.path.basename(member.name)
            if "/tests/" not in member.name or name not in FILES:
                continue
            tree = ast.parse(tar.extractfile(member).read().decode("utf-8"))
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "parametrize"):
                    continue
                if len(node.args) < 2 or not isinstance(node.args[0], ast.Constant) or node.args[0].value not in ARGS:
                    continue
                try:
                    rows = ast.literal_eval(node.args[1])
                except ValueError:
                    continue
                out.setdefault(name, []).extend(
                    (g, p, int(e)) for g, p, e in rows if isinstance(g, str) and isinstance(p, str)
                )
    return out


def suite_verdict(gold: str, pred: str) -> int:
    """The suite's own helper (tests/test_all.py ``compare_strings``) with its default settings."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    targets = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    return int(verify(parse(gold, targets), parse(pred, targets), float_rounding=6, strict=True))


def ours(gold: str, pred: str) -> int:
    """`rlpt eval`: the gold as a benchmark stores it — a solution with boxes gives its final boxed answer (the
    rule `rlpt eval` and `rlpt math-data` apply to gold solutions), outer $ signs are markup — and the
    prediction as a model's reply."""
    boxed = final_boxed(gold)
    if boxed is not None:
        return int(verify_one(pred, boxed) == "correct")
    stripped = gold.strip()
    while stripped.startswith("$") and stripped.endswith("$") and len(stripped) > 1:
        stripped = stripped[1:-1].strip()
    return int(verify_one(pred, stripped) == "correct")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--show", type=int, default=40, help="disagreements to list")
    args = ap.parse_args()
    cases = sdist_cases()
    total = sum(len(v) for v in cases.values())
    print(f"Math-Verify {importlib.metadata.version('math-verify')} test cases: {total} in {len(cases)} files")
    wrong_ours, agree_ours, agree_suite = [], 0, 0
    for name, rows in sorted(cases.items()):
        a = b = 0
        for gold, pred, expected in rows:
            mine, theirs = ours(gold, pred), suite_verdict(gold, pred)
            a += mine == expected
            b += theirs == expected
            if mine != expected:
                wrong_ours.append((name, gold, pred, expected, theirs))
        agree_ours, agree_suite = agree_ours + a, agree_suite + b
        share_a, share_b = 100 * a / len(rows), 100 * b / len(rows)
        print(f"  {name:<24} {len(rows):>4} cases: ours {share_a:5.1f} %, suite helper {share_b:5.1f} %")
    print(
        f"agreement with the expected verdicts: ours {100 * agree_ours / total:.1f} % ({agree_ours}/{total}), "
        f"the suite's own helper {100 * agree_suite / total:.1f} % ({agree_suite}/{total}); "
        f"ratio {agree_ours / max(1, agree_suite):.3f}"
    )
    for name, gold, pred, expected, theirs in wrong_ours[: args.show]:
        print(f"  disagree [{name}] expected {expected} (suite {theirs}): gold {gold[:60]!r} pred {pred[:80]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
