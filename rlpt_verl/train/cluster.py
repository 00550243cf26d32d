"""What a multi-node Ray cluster needs from the driver (verl 0.9.1): settings resolved where the user typed
them, the variables the reward needs forwarded to every worker, and a judge URL every node can reach.

verl's ``main_ppo`` pickles the *unresolved* config to its TaskRunner actor and resolves it there; on a
cluster started with ``ray start`` that actor does not have the shell's variables, so every
``${oc.env:RLPT_JUDGE_URL,...}`` silently takes its default. Ray passes workers only the raylet's
environment plus the job's ``runtime_env``. Pure logic: no Ray, no verl.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from rlpt_verl.nested import strings_in

__all__ = [
    "EXTRA_ENV",
    "env_names_read",
    "forwarded_env",
    "redact_env",
    "is_loopback_url",
    "loopback_judge_problem",
]

EXTRA_ENV = "RLPT_FORWARD_ENV"  # comma-separated names of further variables to forward to every worker
_OC_ENV = re.compile(r"\$\{oc\.env:([A-Za-z_][A-Za-z0-9_]*)")


def env_names_read(container: Any) -> list[str]:
    """Variables an unresolved config reads with ``${oc.env:NAME,...}``, in first-seen order.

    >>> env_names_read({"a": "${oc.env:RLPT_DATA,data}/x", "b": ["${oc.env:RLPT_JUDGE_URL}", 3]})
    ['RLPT_DATA', 'RLPT_JUDGE_URL']
    """
    seen: dict[str, None] = {}
    for text in strings_in(container):
        for name in _OC_ENV.findall(text):
            seen.setdefault(name, None)
    return list(seen)


def forwarded_env(names_read: Iterable[str], api_key_env: str | None, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables every Ray worker gets from the driver: those the config reads, the judge's API-key
    variable, and those named in ``RLPT_FORWARD_ENV``; only the ones set in ``environ``.

    >>> forwarded_env(["RLPT_DATA", "UNSET"], "JUDGE_KEY", {"RLPT_DATA": "/d", "JUDGE_KEY": "s3cret"})
    {'RLPT_DATA': '/d', 'JUDGE_KEY': 's3cret'}
    >>> forwarded_env([], None, {"RLPT_FORWARD_ENV": "HF_TOKEN, X", "HF_TOKEN": "t"})
    {'HF_TOKEN': 't'}
    """
    names = list(names_read)
    if api_key_env:
        names.append(str(api_key_env))
    names += [n.strip() for n in environ.get(EXTRA_ENV, "").split(",") if n.strip()]
    return {n: environ[n] for n in dict.fromkeys(names) if n in environ}


def redact_env(env: Mapping[str, str], secret_names: Iterable[str]) -> dict[str, str]:
    """``env`` with the values of ``secret_names`` (and of names that look secret) replaced, for printing.

    >>> redact_env({"A": "1", "MY_JUDGE": "s", "HF_TOKEN": "t", "TOKENIZERS_PARALLELISM": "true"}, ["MY_JUDGE"])
    {'A': '1', 'MY_JUDGE': '***', 'HF_TOKEN': '***', 'TOKENIZERS_PARALLELISM': 'true'}
    """
    secret = set(secret_names)
    looks = re.compile(r"(^|_)(KEY|TOKEN|SECRET|PASSWORD|PASSWD)(_|$)", re.I)
    return {k: ("***" if k in secret or looks.search(k) else v) for k, v in env.items()}


def is_loopback_url(url: str) -> bool:
    """A URL (or verl's ``ip:port``) whose host is this machine only.

    >>> [is_loopback_url(u) for u in ("http://127.0.0.1:8000/v1", "localhost:80", "http://[::1]:9/v1")]
    [True, True, True]
    >>> [is_loopback_url(u) for u in ("http://10.0.0.5:8000/v1", "https://judge.example.org/v1", "")]
    [False, False, False]
    """
    if not url:
        return False
    if not isinstance(url, str) or "," in url:  # several judge replicas: any loopback one is unreachable
        from rlpt_verl.reward.judge_replicas import judge_urls

        return any(is_loopback_url(u) for u in judge_urls(list(url) if not isinstance(url, str) else url))
    host = urlsplit(url if "://" in url else "http://" + url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_judge_problem(judge_url: str | None, node_addresses: Iterable[str]) -> str | None:
    """One line when a loopback judge URL meets a cluster whose nodes are on more than one host: reward
    workers on the other hosts would each talk to their own loopback. None when that is not the case.

    >>> loopback_judge_problem("http://127.0.0.1:8000/v1", ["10.0.0.1", "10.0.0.1"]) is None
    True
    >>> print(loopback_judge_problem("http://127.0.0.1:8000/v1", ["10.0.0.1", "10.0.0.2"]))  # doctest: +ELLIPSIS
    judge URL http://127.0.0.1:8000/v1 is loopback but the Ray cluster's nodes are on 2 hosts (10.0.0.1, ...
    """
    hosts = sorted(set(node_addresses))
    if len(hosts) < 2 or not judge_url or not is_loopback_url(judge_url):
        return None
    return (
        f"judge URL {judge_url} is loopback but the Ray cluster's nodes are on {len(hosts)} hosts "
        f"({', '.join(hosts[:4])}{', ...' if len(hosts) > 4 else ''}): reward workers run on every node and "
        "would each call their own machine. Set RLPT_JUDGE_URL (or reward.reward_kwargs.judge_base_url) to an "
        "address every node can reach, e.g. http://<judge-host>:8000/v1"
    )


def is_local_relative(path: str) -> bool:
    """A relative local path (no scheme such as hdfs:// or s3://).

    >>> is_local_relative("data/rlpt/train.parquet"), is_local_relative("/abs/x"), is_local_relative("hdfs://n/x")
    (True, False, False)
    """
    return bool(path) and "://" not in path and not path.startswith(("/", "~"))


def absolute_paths(values: Mapping[str, Any], cwd: str, exists) -> dict[str, Any]:
    """The relative local paths among ``values`` (dotted key -> str or list of str) made absolute against the
    driver's ``cwd``: on a cluster the TaskRunner runs in a Ray session folder on some node, where a relative
    path means something else. Outputs (``trainer.default_local_dir``) always; inputs only when they exist
    from ``cwd`` (``Qwen/Qwen3-4B-Base`` is a hub name, not a folder).

    >>> absolute_paths({"trainer.default_local_dir": "ckpt", "actor_rollout_ref.model.path": "Qwen/Q"},
    ...                "/runs", lambda p: False)
    {'trainer.default_local_dir': '/runs/ckpt'}
    >>> absolute_paths({"data.train_files": ["data/a.parquet", "/x/b.parquet"]}, "/runs", lambda p: True)
    {'data.train_files': ['/runs/data/a.parquet', '/x/b.parquet']}
    """
    import posixpath

    def fix(key: str, path: Any) -> Any:
        if not isinstance(path, str) or not is_local_relative(path):
            return path
        full = posixpath.normpath(posixpath.join(cwd, path))
        return full if key in OUTPUT_PATHS or exists(full) else path

    out = {}
    for key, value in values.items():
        old = list(value) if isinstance(value, list | tuple) else value
        new = [fix(key, v) for v in old] if isinstance(old, list) else fix(key, old)
        if new != old:
            out[key] = new
    return out


OUTPUT_PATHS = ("trainer.default_local_dir",)
# the path settings a recipe gives; each is made absolute in the driver (absolute_paths)
PATH_KEYS = (
    "data.train_files",
    "data.val_files",
    "actor_rollout_ref.model.path",
    "reward.reward_model.model_path",
    "trainer.default_local_dir",
)
