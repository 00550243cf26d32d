"""Output paths checked before any work starts, so a typo costs a second, not a finished run; outputs that
appear only complete (temporary folder, then rename), and one writer per output folder at a time."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator

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

    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=sort_keys) + "\n")


def write_text_atomic(path: str, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` (usual 0644 permissions, not mkstemp's 0600), then
    rename it into place."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _lock_owner(lock: str) -> tuple[str, int]:
    """(host, pid) written in a lock file; ("", 0) when unreadable."""
    try:
        parts = open(lock).read().split()
    except OSError:
        return "", 0
    if len(parts) == 1 and parts[0].isdigit():
        return socket.gethostname(), int(parts[0])
    if len(parts) == 2 and parts[1].isdigit():
        return parts[0], int(parts[1])
    return "", 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def output_lock(output: str, option: str = "--output") -> Iterator[None]:
    """Refuse a second command writing ``output`` while one runs (a lock file beside it naming the pid).

    A lock left by a process that no longer exists is taken over.
    """
    output = os.path.abspath(output)
    lock = output.rstrip("/") + ".rlpt-lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            host, pid = _lock_owner(lock)
            if host and host != socket.gethostname():  # another node of a shared filesystem: cannot check it
                raise UserError(
                    f"{option} {output} is being written by an rlpt command on {host} (pid {pid}); wait for it, "
                    f"or remove {lock} if that command is gone"
                ) from None
            if pid and _pid_alive(pid):
                raise UserError(
                    f"{option} {output} is being written by another rlpt command (pid {pid}); wait for it to end, "
                    f"or choose another {option} (lock file: {lock})"
                ) from None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)  # stale: its process is gone
            continue
        except OSError as e:
            raise UserError(f"{option} {output}: cannot write beside it ({e.strerror})") from None
        with os.fdopen(fd, "w") as f:
            f.write(f"{socket.gethostname()} {os.getpid()}")
        break
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)


def prepare_output_dir(output: str, option: str = "--output") -> str:
    """``output``'s parent, created if needed; a UserError (exit 2) when ``output`` cannot be a folder there."""
    output = os.path.abspath(output)
    if os.path.exists(output) and not os.path.isdir(output):
        raise UserError(f"{option} {output} is a file; give a folder")
    parent = os.path.dirname(output.rstrip("/")) or "/"
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise UserError(f"{option} {output}: cannot create {parent} ({e.strerror})") from None
    if not os.access(parent, os.W_OK | os.X_OK) or (os.path.isdir(output) and not os.access(output, os.W_OK)):
        raise UserError(f"{option} {output}: not writable")
    return output


@contextlib.contextmanager
def staged_output(output: str, option: str = "--output", owned: tuple[str, ...] = ()) -> Iterator[str]:
    """A temporary folder beside ``output`` to write everything into; on success its files replace those of
    ``output`` (each by an atomic rename), on failure or Ctrl-C it is removed and ``output`` is untouched.
    Files named in ``owned`` that this run did not write are removed (no stale file from an earlier run).

    >>> import tempfile, os
    >>> root = tempfile.mkdtemp()
    >>> with staged_output(os.path.join(root, "out")) as tmp:
    ...     _ = open(os.path.join(tmp, "a.txt"), "w").write("new")
    >>> sorted(os.listdir(root)), open(os.path.join(root, "out", "a.txt")).read()
    (['out'], 'new')
    """
    output = prepare_output_dir(output, option)
    with output_lock(output, option):
        tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(output.rstrip('/'))}.tmp-", dir=os.path.dirname(output))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the output folder gets the usual permissions
        try:
            yield tmp
            if not os.path.exists(output):
                os.rename(tmp, output)  # the whole folder appears at once
                return
            written = sorted(os.listdir(tmp))
            for name in written:
                os.replace(os.path.join(tmp, name), os.path.join(output, name))
            for name in set(owned) - set(written):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(output, name))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
