"""The one error type of the parts engine."""

from __future__ import annotations


class PartsError(Exception):
    """A stage cannot run: bad supplier config, unreachable store or database, bad stored data.
    The message says what is wrong and what to do; no table or object is left half-written."""
