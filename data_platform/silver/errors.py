"""The one error type of the silver engine."""

from __future__ import annotations


class SilverLoadError(Exception):
    """A file or snapshot cannot be loaded. The message names the file, the line, byte offset
    or column where it went wrong and what to do; the target table is left as it was."""
