"""What the command line's commands share: how a command fails, exit statuses, report lines."""

from __future__ import annotations

#: Exit status of a check that found a problem; argparse uses 2 for usage errors, and so do bad options.
FAILED = 1
USAGE = 2


class Failure(Exception):
    """A command that failed: ``str()`` is the one-line explanation, ``status`` the exit status."""

    def __init__(self, message: str, status: int = FAILED) -> None:
        super().__init__(message)
        self.status = status


def line(label: str, text: str) -> None:
    """One line of a command's report: a label column, then the text."""
    print(f"  {label:<12} {text}", flush=True)
