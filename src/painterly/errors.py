"""Errors the interfaces (CLI, web) turn into one-line messages instead of tracebacks."""


class StyleTransferError(Exception):
    """A problem the user can fix: bad input file, bad option value, missing weights."""


class ImageError(StyleTransferError):
    """An image could not be read or written (missing, corrupt, too large, unsupported)."""


class CLIError(Exception):
    """Bad command-line usage (exit code 2)."""
