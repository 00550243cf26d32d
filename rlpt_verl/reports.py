"""The contract between offline builds and what reads them later (training, `rlpt doctor`): the report
file names each builder writes beside its parquet, and a typed reader for what the readers need.

A build never decides training settings (λ lives in ``data.rlpt.msr_lambda``); its report records what
the data *is*: prompt-token statistics against the budget it was built for, and the rows per pool.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from .errors import UserError

RLPT_REPORT = "build_report.json"  # `rlpt build`
RPT_REPORT = "rpt_report.json"  # `rlpt build-rpt`
PREPARE_REPORT = "prepare_report.json"  # `rlpt prepare`
SFT_REPORT = "sft_report.json"  # `rlpt sft-data`
MATH_REPORT = "math_report.json"  # `rlpt math-data`
BUILD_REPORTS = (RLPT_REPORT, RPT_REPORT)  # the reports that describe RL prompts


@dataclass(frozen=True)
class BuildReport:
    """What a build report says about its prompts (from `rlpt build` or `rlpt build-rpt`)."""

    path: str
    built_max_prompt_tokens: int | None  # the --max-prompt-tokens budget the prompts were fitted to
    longest_prompt_tokens: int | None  # p100 of the chat-templated prompt lengths
    median_prompt_tokens: int | None
    samples: dict[str, int]  # rows per pool, e.g. {"train_asr": 1200, ...}


def read_build_report(path: str) -> BuildReport:
    """The typed view of one build report; a UserError naming the file when it is not one.

    >>> read_build_report("/no/such/build_report.json")
    Traceback (most recent call last):
    ...
    rlpt_verl.errors.UserError: cannot read build report /no/such/build_report.json: No such file or directory
    """
    try:
        with open(path) as fh:
            raw = json.load(fh)
    except OSError as e:
        raise UserError(f"cannot read build report {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise UserError(f"build report {path} is not JSON ({e}); rebuild the data") from None
    if not isinstance(raw, dict):
        raise UserError(f"build report {path} is not a JSON object; rebuild the data")
    tokens = raw.get("prompt_tokens") or {}
    return BuildReport(
        path=path,
        built_max_prompt_tokens=(raw.get("config") or {}).get("max_prompt_tokens"),
        longest_prompt_tokens=tokens.get("p100"),
        median_prompt_tokens=tokens.get("p50"),
        samples=dict(raw.get("samples") or {}),
    )


def reports_beside(files: list[str]) -> list[BuildReport]:
    """The build reports in the folders of ``files`` (data files), each read once, in path order."""
    paths = {os.path.join(os.path.dirname(f), name) for f in files for name in BUILD_REPORTS}
    return [read_build_report(p) for p in sorted(paths) if os.path.exists(p)]


def held_out_nothing(data_file: str) -> bool:
    """Whether ``data_file`` is a val.parquet that `rlpt math-data`/`sft-data` did not write because nothing was
    held out (``--val-fraction 0``), by the report beside it."""
    folder, name = os.path.split(data_file)
    if name != "val.parquet":
        return False
    for report in (MATH_REPORT, SFT_REPORT):
        path = os.path.join(folder, report)
        try:
            with open(path) as fh:
                rows = json.load(fh).get("rows") or {}
        except (OSError, ValueError, AttributeError):
            continue
        if rows.get("val") == 0:
            return True
    return False
