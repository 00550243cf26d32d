"""One home for every command-line default: a config dataclass field declared with :func:`opt` carries its
help text (and flag, choices, parser), and both ``argparse`` and README's option tables are generated from it.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Demo:
    ...     seed: int = opt(0, "seeded sampling")
    >>> markdown_table(Demo)
    '| option | default | meaning |\\n| --- | --- | --- |\\n| `--seed` | 0 | seeded sampling |'

A field without :func:`opt` is not on the command line (it keeps its dataclass default).
``python -m rlpt_verl.options`` rewrites README's tables; a test fails when they drift.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field

from rlpt_verl.errors import UserError

KEY = "rlpt_option"


@dataclass(frozen=True)
class Option:
    help: str
    flag: str | None = None  # default: --field-name
    aliases: tuple[str, ...] = ()
    choices: tuple | None = None
    parse: Callable | None = None  # argparse type= for values that are not a plain int/float/str
    positional: bool = False
    shown_default: str | None = None  # how README and --help show the default, when its repr is unhelpful
    low: float | None = None  # the least accepted value (checked in from_args: one line naming the flag)


def opt(default=MISSING, help: str = "", *, factory=MISSING, **kwargs):
    """A dataclass field that is also a command-line option (see the module docstring)."""
    metadata = {KEY: Option(help, **kwargs)}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def json_object(value: str) -> dict:
    """argparse type for a JSON object option.

    >>> json_object('{"enable_thinking": false}')
    {'enable_thinking': False}
    """
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {e}") from None
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError("expected a JSON object, e.g. '{\"enable_thinking\": false}'")
    return parsed


def comma_list(value: str) -> tuple[str, ...]:
    """argparse type for ``a,b,c``.

    >>> comma_list("en, de,")
    ('en', 'de')
    """
    return tuple(x.strip() for x in value.split(",") if x.strip())


@dataclass(frozen=True)
class _Spec:
    name: str  # the dataclass field
    dest: str  # the argparse destination
    flag: str
    kind: type
    default: object
    required: bool
    option: Option


def _kind(hint) -> type:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return typing.get_origin(hint) or hint


def specs(cls) -> list[_Spec]:
    """The command-line options of a config dataclass, in field order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        option = f.metadata.get(KEY)
        if option is None:
            continue
        if f.default is not MISSING:
            default, required = f.default, False
        elif f.default_factory is not MISSING:
            default, required = f.default_factory(), False
        else:
            default, required = None, True
        flag = option.flag or (f.name if option.positional else "--" + f.name.replace("_", "-"))
        dest = f.name if option.positional else flag.lstrip("-").replace("-", "_")
        out.append(_Spec(f.name, dest, flag, _kind(hints[f.name]), default, required, option))
    return out


@dataclass(frozen=True)
class QuietOption:
    """The progress-bar switch of the long-running commands."""

    quiet: bool = opt(False, "no progress bar")


def shown_default(spec: _Spec) -> str:
    """The default as README and ``--help`` show it."""
    if spec.option.shown_default is not None:
        return spec.option.shown_default
    if spec.required:
        return "required"
    d = spec.default
    if spec.kind is bool:
        return "off" if (d is False) != spec.flag.startswith("--no-") else "on"
    if d is None or d == "" or d == ():
        return "none"
    if isinstance(d, dict):
        return f"`{json.dumps(d)}`"
    if isinstance(d, int) and not isinstance(d, bool) and abs(d) >= 10_000:
        return f"{d:,}"
    if isinstance(d, int | float):
        return str(d)
    return f"`{d}`"


def add_options(parser: argparse.ArgumentParser, cls) -> None:
    """Add ``cls``'s options to ``parser``; help text ends with the default."""
    for s in specs(cls):
        o = s.option
        help_ = o.help if s.required or o.positional else f"{o.help} (default: {shown_default(s)})"
        help_ = help_.replace("%", "%%")  # argparse formats help strings with %
        if o.positional:
            parser.add_argument(s.dest, nargs="+" if s.kind is tuple else None, help=o.help)
            continue
        kw: dict = {"dest": s.dest, "help": help_}
        if s.kind is bool:
            kw["action"] = "store_false" if s.flag.startswith("--no-") else "store_true"
            kw["default"] = s.default
        else:
            kw["required"] = s.required
            kw["default"] = s.default
            kw["type"] = o.parse or (json_object if s.kind is dict else s.kind if s.kind in (int, float) else str)
            if s.kind is tuple and o.parse is None:
                kw["nargs"] = "*"
            if o.choices:
                kw["choices"] = o.choices
        parser.add_argument(s.flag, *o.aliases, **kw)


def from_args(cls, args: argparse.Namespace, **overrides):
    """An instance of ``cls`` from the parsed options (tuples for lists), plus ``overrides``."""
    values = {}
    for s in specs(cls):
        value = getattr(args, s.dest)
        low = s.option.low
        if low is not None and isinstance(value, int | float) and not isinstance(value, bool) and value < low:
            raise UserError(f"{s.flag} {value}: must be at least {low:g} ({s.option.help})")
        values[s.name] = tuple(value) if s.kind is tuple and value is not None else value
    return cls(**{**values, **overrides})


def markdown_table(*classes) -> str:
    """README's option table for the options of ``classes`` (positional arguments are left out)."""
    rows = ["| option | default | meaning |", "| --- | --- | --- |"]
    for cls in classes:
        for s in specs(cls):
            if not s.option.positional:
                flag = " / ".join(f"`{f}`" for f in (s.flag, *s.option.aliases))
                rows.append(f"| {flag} | {shown_default(s)} | {s.option.help} |")
    return "\n".join(rows)


def command_tables() -> dict[str, str]:
    """The option table of each data command, by command name."""
    from rlpt_verl.data_tools.decontam import DecontamConfig
    from rlpt_verl.data_tools.dedup import DedupConfig
    from rlpt_verl.data_tools.filters import FilterConfig
    from rlpt_verl.data_tools.normalize import NormalizeConfig
    from rlpt_verl.data_tools.prepare import PrepareConfig, PrepareSwitches
    from rlpt_verl.data_tools.quality import QualityConfig
    from rlpt_verl.eval.run import EvalConfig
    from rlpt_verl.tasks.math import MathDataConfig
    from rlpt_verl.tasks.rlpt import BuildConfig
    from rlpt_verl.tasks.rpt import RPTBuildConfig
    from rlpt_verl.tasks.sft import SFTDataConfig
    from rlpt_verl.tasks.sft_control import SFTControlConfig
    from rlpt_verl.tasks.span import SpanBuildConfig

    return {
        "prepare": markdown_table(
            PrepareConfig,
            PrepareSwitches,
            NormalizeConfig,
            FilterConfig,
            DedupConfig,
            DecontamConfig,
            QualityConfig,
            QuietOption,
        ),
        "build": markdown_table(BuildConfig, QuietOption),
        "build-rpt": markdown_table(RPTBuildConfig, QuietOption),
        "build-span": markdown_table(SpanBuildConfig),
        "build-sft": markdown_table(SFTControlConfig),
        "sft-data": markdown_table(SFTDataConfig),
        "math-data": markdown_table(MathDataConfig),
        "eval": markdown_table(EvalConfig, QuietOption),
    }


_BLOCK = re.compile(r"(<!-- options:(?P<name>[\w-]+) -->).*?(<!-- /options -->)", re.S)


def render_readme(text: str) -> str:
    """``text`` with every ``<!-- options:NAME -->`` … ``<!-- /options -->`` block regenerated."""
    tables = command_tables()
    return _BLOCK.sub(lambda m: f"{m.group(1)}\n{tables[m.group('name')]}\n{m.group(3)}", text)


if __name__ == "__main__":  # python -m rlpt_verl.options [README.md]
    path = sys.argv[1] if len(sys.argv) > 1 else "README.md"
    with open(path) as fh:
        old = fh.read()
    new = render_readme(old)
    if new != old:
        with open(path, "w") as fh:
            fh.write(new)
    print(f"{path}: {'updated' if new != old else 'up to date'}")
