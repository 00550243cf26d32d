"""`rlpt doctor`: versions, and whether `import verl` registers our components here and in a Ray worker.

verl swallows plugin import errors at debug level, so a broken install looks like "Unknown reward
manager: rlpt" at step 0 on the cluster; this command says what is missing before that.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import subprocess
import sys

PLUGIN_GROUP = "verl.plugins"
ENTRY_POINT = "rlpt_verl"

_CHECK = (
    "import json, verl\n"
    "from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER\n"
    "print(json.dumps(sorted(REWARD_MANAGER)))\n"
)


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _registered_in_fresh_process() -> tuple[list[str] | None, str]:
    import json

    proc = subprocess.run([sys.executable, "-c", _CHECK], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        return None, (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    return json.loads(proc.stdout.strip().splitlines()[-1]), ""


def _registered_in_ray_worker() -> tuple[list[str] | None, str]:
    try:
        import ray
    except ImportError as e:
        return None, f"ray not importable: {e}"

    def names():
        import verl  # noqa: F401  (the plugin entry point runs here, in the worker process)
        from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER

        return sorted(REWARD_MANAGER)

    started = False
    try:
        if not ray.is_initialized():
            ray.init(
                num_cpus=1,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                _node_ip_address="127.0.0.1",
            )
            started = True
        return ray.get(ray.remote(names).remote(), timeout=300), ""
    except Exception as e:  # a Ray start failure is a finding, not a crash
        return None, f"{type(e).__name__}: {e}"
    finally:
        if started:
            ray.shutdown()


def run_doctor(check_ray: bool = True) -> int:
    from rlpt_verl.plugin import REWARD_MANAGERS

    problems: list[str] = []
    print("versions:")
    for dist in ("rlpt-verl", "verl", "torch", "transformers", "ray", "vllm", "sglang", "nltk", "datasets"):
        v = _version(dist)
        if v is not None or dist in ("rlpt-verl", "verl", "torch", "ray"):
            print(f"  {dist:13s} {v or 'MISSING'}")
        if v is None and dist in ("verl", "torch", "ray"):
            problems.append(f"{dist} is not installed (pip install 'verl[verl-core]==0.9.1')")
    verl_v = _version("verl")
    if verl_v and verl_v != "0.9.1":
        problems.append(f"verl {verl_v} is installed; rlpt-verl is built and tested for verl 0.9.1")

    eps = [ep for ep in md.entry_points(group=PLUGIN_GROUP) if ep.name == ENTRY_POINT]
    print(f"entry point {PLUGIN_GROUP}:{ENTRY_POINT}: {'found -> ' + eps[0].value if eps else 'MISSING'}")
    if not eps:
        problems.append(f"entry point {PLUGIN_GROUP}:{ENTRY_POINT} missing: reinstall rlpt-verl with pip")
    policy = os.environ.get("VERL_USE_EXTERNAL_PLUGINS", "auto").strip().lower()
    if policy == "none" or (policy != "auto" and ENTRY_POINT not in {p.strip() for p in policy.split(",")}):
        problems.append(
            f"VERL_USE_EXTERNAL_PLUGINS={policy!r} disables our plugin: unset it or include '{ENTRY_POINT}' "
            "(or name components by pkg:// paths in the recipe)"
        )

    checks = [("a fresh python process", _registered_in_fresh_process)]
    if check_ray:
        checks.append(("a Ray worker process", _registered_in_ray_worker))
    for where, check in checks:
        names, error = check()
        if names is None:
            problems.append(f"`import verl` failed in {where}: {error}")
            continue
        missing = [n for n in REWARD_MANAGERS if n not in names]
        status = "ok" if not missing else f"MISSING {', '.join(missing)}"
        print(f"reward managers registered by `import verl` in {where}: {status}")
        if missing:
            problems.append(
                f"`import verl` in {where} does not register reward manager(s) {', '.join(missing)}: "
                "check that rlpt-verl is installed in that interpreter and that `python -c 'import rlpt_verl.plugin'`"
                " imports cleanly"
            )
    if problems:
        print("\nproblems:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0
