"""The tree answers "what runs where": verl's processes never load the offline builders or the tools, and no
module reaches into another's private names."""

import ast
import json
import pathlib
import subprocess
import sys

from ..conftest import REPO

# What verl loads: the plugin (every verl process), the dataset path, the trainer's job and the reward managers.
VERL_SIDE = [
    "rlpt_verl.plugin",
    "rlpt_verl.dataset",
    "rlpt_verl.main_ppo",
    "rlpt_verl.train.runner",
    "rlpt_verl.train.trainer",  # imported by the runner inside its Ray actor
    "rlpt_verl.reward.rlpt_manager",
    "rlpt_verl.reward.rpt_manager",
]
OFFLINE = ("rlpt_verl.tasks", "rlpt_verl.data_tools", "rlpt_verl.tools", "rlpt_verl.cli")


def test_verl_processes_do_not_import_builders_or_tools():
    code = (
        "import importlib, json, sys\n"
        f"for m in {VERL_SIDE!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('rlpt_verl'))))"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    loaded = json.loads(p.stdout.strip().splitlines()[-1])
    assert {"rlpt_verl.llm_client", "rlpt_verl.train.mixture"} <= set(loaded)  # indirect imports are seen
    assert [m for m in loaded if m.startswith(OFFLINE)] == []


def _our_modules():
    for root in ("rlpt_verl", "data_tools"):
        yield from sorted(pathlib.Path(REPO, root).rglob("*.py"))


def test_no_module_imports_a_private_name_of_another():
    offenders = []
    for path in _our_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                ours = node.level > 0 or (node.module or "").startswith("rlpt_verl")
                external_private = [a.name for a in node.names if a.name.startswith("_")]
                if external_private and (ours or node.module.startswith("datasketch")):
                    offenders.append(f"{path.relative_to(REPO)}: from {node.module} import {external_private}")
    assert offenders == []
