"""User-facing errors: the CLI prints these as one line (no traceback).

Exit codes of every `rlpt` command: 0 ok; 1 the command ran but could not do its job (a server failed, a
check found problems); 2 a mistake in the input or options; 130 interrupted.
"""


class UserError(Exception):
    """A mistake in the user's input or options; the message names the input and the fix (exit 2)."""


class JobError(Exception):
    """The command ran but could not do its job, e.g. a server stopped answering (exit 1)."""


def exit_code(prog: str, run) -> int:
    """``run()``'s exit code, with the errors above printed as one line prefixed ``prog`` (exit 2 or 1) and
    Ctrl-C as 130: the one rule of every `rlpt` command and the quickstart."""
    import sys

    try:
        return run()
    except UserError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except JobError as e:
        print(f"{prog}: failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
