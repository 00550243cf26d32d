"""User-facing errors: the CLI prints these as one line and exits 2 (no traceback)."""


class UserError(Exception):
    """A mistake in the user's input or options; the message names the input and the fix."""
