"""One home for each default: argparse and README's option tables come from the config dataclasses."""

import argparse
import dataclasses
import pathlib
import subprocess
import sys
from dataclasses import dataclass

import pytest

from rlpt_verl.cli import build_parser
from rlpt_verl.options import add_options, comma_list, from_args, json_object, markdown_table, opt, render_readme

from ..conftest import REPO


def test_readme_option_tables_are_generated_from_the_configs():
    readme = pathlib.Path(REPO, "README.md").read_text()
    assert readme.count("<!-- options:") == 8
    assert render_readme(readme) == readme, "README drifted: run `python -m rlpt_verl.options README.md`"


def test_a_changed_default_shows_up_as_drift():
    readme = pathlib.Path(REPO, "README.md").read_text()
    stale = readme.replace("| `--max-prompt-tokens` | 2048 |", "| `--max-prompt-tokens` | 1024 |")
    assert stale != readme and render_readme(stale) == readme


def _config_from_cli(argv):
    from rlpt_verl.eval.run import EvalConfig
    from rlpt_verl.tasks.math import MathDataConfig
    from rlpt_verl.tasks.rlpt import BuildConfig
    from rlpt_verl.tasks.rpt import RPTBuildConfig
    from rlpt_verl.tasks.sft import SFTDataConfig

    classes = {
        "build": BuildConfig,
        "build-rpt": RPTBuildConfig,
        "sft-data": SFTDataConfig,
        "math-data": MathDataConfig,
        "eval": EvalConfig,
    }
    return classes[argv[0]], from_args(classes[argv[0]], build_parser().parse_args(argv))


@pytest.mark.parametrize(
    "argv, required",
    [
        (["build", "c.jsonl", "-o", "out", "--tokenizer", "tok"], {"tokenizer": "tok"}),
        (
            ["build-rpt", "c.jsonl", "-o", "out", "--tokenizer", "tok", "--proxy-model", "p"],
            {"tokenizer": "tok", "proxy_model": "p"},
        ),
        (["sft-data", "c.jsonl", "-o", "out"], {}),
        (["math-data", "c.jsonl", "-o", "out"], {}),
        (["eval", "c.jsonl", "-o", "out"], {}),
    ],
)
def test_command_line_defaults_are_the_dataclass_defaults(argv, required):
    cls, parsed = _config_from_cli(argv)
    positional = "benchmarks" if argv[0] == "eval" else "inputs"
    assert parsed == cls(**{positional: ("c.jsonl",)}, output="out", **required)


def test_prepare_defaults_are_the_stage_defaults():
    from rlpt_verl.cli import _cmd_prepare  # noqa: F401  (the command that composes the stages)
    from rlpt_verl.data_tools.dedup import DedupConfig
    from rlpt_verl.data_tools.filters import FilterConfig
    from rlpt_verl.data_tools.normalize import NormalizeConfig
    from rlpt_verl.data_tools.prepare import PrepareConfig

    args = build_parser().parse_args(["prepare", "c.jsonl", "-o", "out"])
    assert from_args(PrepareConfig, args) == PrepareConfig(inputs=("c.jsonl",), output="out")
    assert from_args(FilterConfig, args) == FilterConfig()
    assert from_args(DedupConfig, args) == DedupConfig()
    assert from_args(NormalizeConfig, args) == NormalizeConfig()
    args = build_parser().parse_args(
        ["prepare", "c", "-o", "o", "--no-near-dedup", "--dedup-threshold", "0.7", "--languages", "en,de"]
    )
    assert from_args(DedupConfig, args) == dataclasses.replace(DedupConfig(), near=False, threshold=0.7)
    assert from_args(FilterConfig, args).languages == ("en", "de")


@pytest.mark.parametrize("command", ["prepare", "build", "build-rpt", "sft-data", "math-data", "eval"])
def test_every_table_row_is_an_option_of_the_command(command):
    from rlpt_verl.options import command_tables

    p = subprocess.run([sys.executable, "-m", "rlpt_verl.cli", command, "--help"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    flags = [row.split("`")[1] for row in command_tables()[command].splitlines()[2:]]
    assert flags and all(flag in p.stdout for flag in flags)


@dataclass(frozen=True)
class Demo:
    name: str = opt(help="required, no default")
    keep: bool = opt(True, "turn it off", flag="--no-keep")
    verbose: bool = opt(False, "turn it on")
    langs: tuple = opt((), "languages", parse=comma_list)
    files: tuple = opt((), "files")
    kwargs: dict = opt(help="JSON", factory=dict)
    hidden: int = 7  # no opt(): not on the command line


def test_generated_options_cover_each_kind():
    p = argparse.ArgumentParser()
    add_options(p, Demo)
    d = from_args(Demo, p.parse_args(["--name", "x"]))
    assert d == Demo(name="x")
    d = from_args(
        Demo, p.parse_args(["--name", "x", "--no-keep", "--verbose", "--langs", "en,fr", "--files", "a", "b"])
    )
    assert (d.keep, d.verbose, d.langs, d.files) == (False, True, ("en", "fr"), ("a", "b"))
    assert from_args(Demo, p.parse_args(["--name", "x", "--kwargs", '{"a": 1}'])).kwargs == {"a": 1}
    with pytest.raises(SystemExit):
        p.parse_args([])  # --name is required
    with pytest.raises(SystemExit):
        p.parse_args(["--name", "x", "--hidden", "3"])
    table = markdown_table(Demo)
    assert "| `--name` | required |" in table and "| `--no-keep` | off | turn it off |" in table
    assert "hidden" not in table and "| `--kwargs` | `{}` | JSON |" in table


@pytest.mark.parametrize("bad", ["[1]", "not json"])
def test_json_object_rejects_what_is_not_an_object(bad):
    with pytest.raises(argparse.ArgumentTypeError):
        json_object(bad)
