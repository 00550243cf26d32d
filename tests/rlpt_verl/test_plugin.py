"""The verl.plugins entry point: registration on `import verl` in fresh processes, silent, idempotent."""

import json
import os
import subprocess
import sys

CHECK = (
    "import json, verl\n"
    "from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER\n"
    "print(json.dumps(sorted(REWARD_MANAGER)))\n"
)


def run(code, **env):
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}, cwd="/", timeout=300
    )


def test_import_verl_registers_our_managers_in_a_fresh_process():
    p = run(CHECK)
    assert p.returncode == 0, p.stderr
    assert "rlpt" in json.loads(p.stdout.strip().splitlines()[-1])


def test_entry_point_is_what_registers_them():
    p = run(CHECK, VERL_USE_EXTERNAL_PLUGINS="none")
    assert "rlpt" not in json.loads(p.stdout.strip().splitlines()[-1])
    p = run(CHECK, VERL_USE_EXTERNAL_PLUGINS="rlpt_verl")
    assert "rlpt" in json.loads(p.stdout.strip().splitlines()[-1])


def test_plugin_is_silent_and_safe_to_import_twice():
    base = run("import verl", VERL_USE_EXTERNAL_PLUGINS="none")
    with_plugin = run(
        "import verl, importlib, rlpt_verl.plugin\n"
        "from verl.utils.import_utils import load_extern_object\n"
        "load_extern_object('pkg://rlpt_verl.plugin', 'REWARD_MANAGERS')\n"
        "importlib.import_module('rlpt_verl.reward.rlpt_manager')\n"
    )
    assert with_plugin.returncode == 0, with_plugin.stderr
    assert with_plugin.stdout == base.stdout == ""
    assert with_plugin.stderr == base.stderr


def test_plugin_adds_little_import_time():
    code = (
        "import time, importlib\n"
        "import verl.experimental.reward_loop.reward_manager\n"  # verl's own registry, imported by its trainer
        "t = time.perf_counter(); importlib.import_module('rlpt_verl.plugin'); print(time.perf_counter() - t)\n"
    )
    p = run(code, VERL_USE_EXTERNAL_PLUGINS="none")
    assert p.returncode == 0, p.stderr
    assert float(p.stdout.strip().splitlines()[-1]) < 0.5
