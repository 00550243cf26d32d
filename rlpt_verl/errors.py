"""User-facing errors: the CLI prints these as one line (no traceback).

Exit codes of every `rlpt` command: 0 ok; 1 the command ran but could not do its job (a server failed, a
check found problems); 2 a mistake in the input or options; 130 interrupted.
"""


class UserError(Exception):
    """A mistake in the user's input or options; the message names the input and the fix (exit 2)."""


class JobError(Exception):
    """The command ran but could not do its job, e.g. a server stopped answering (exit 1)."""
