"""The one exception type users see: its message is the whole, one-line explanation."""


class BnnError(Exception):
    """A user-facing error: what was wrong and how to fix it, in one line. The CLI prints it without a traceback."""


class UsageError(BnnError):
    """A wrong combination of command-line options (found after parsing): the CLI exits 2, like argparse."""
