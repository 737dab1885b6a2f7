"""The one exception type users see.

Anything a user can cause (a bad file, a wrong flag, a missing run) raises
``VaekitError`` with a one-line message that names the file or field and what was
expected. The CLI prints that line and exits non-zero without a traceback; a Python
caller can catch it like any exception. Bugs stay ordinary exceptions, so they keep
their tracebacks.
"""

from __future__ import annotations


class VaekitError(Exception):
    """A problem with the user's input, stated in one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message.replace("\n", " ").strip())
