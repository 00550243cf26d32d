"""Output paths checked before any work starts, so a typo costs a second, not a finished run."""

from __future__ import annotations

import os
import tempfile

from .errors import UserError


def check_output_file(path: str, option: str = "--output") -> str:
    """``path`` as an absolute path if a file can be written there; else a UserError naming ``option``.

    >>> check_output_file("/no/such/folder/report.json")
    Traceback (most recent call last):
    ...
    rlpt_verl.errors.UserError: --output /no/such/folder/report.json: folder /no/such/folder does not exist
    """
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    if os.path.isdir(path):
        raise UserError(f"{option} {path} is a folder; give a file name")
    if not os.path.isdir(folder):
        raise UserError(f"{option} {path}: folder {folder} does not exist")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".rlpt-write-check."):
            pass
    except OSError as e:
        raise UserError(f"{option} {path}: cannot write in {folder} ({e.strerror})") from None
    return path


def write_json_atomic(path: str, data, sort_keys: bool = False) -> None:
    """Write ``data`` as JSON to a temporary file beside ``path``, then rename it into place: a reader
    (or a crash) never sees half a file, and an earlier good file survives a failed write."""
    import json

    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp.", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=sort_keys)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
