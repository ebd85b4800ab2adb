"""Caps the bytes that uploads hold in memory at once, whatever the number of workers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

DEFAULT_MEMORY_BUDGET = 256 * 1024 * 1024


class ByteBudget:
    """Blocks a reservation until it fits; one larger than the whole budget waits to run alone."""

    def __init__(self, limit: int = DEFAULT_MEMORY_BUDGET) -> None:
        self.limit = limit
        self.in_use = 0
        self._changed = threading.Condition()

    @contextmanager
    def reserve(self, size: int) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: self.in_use == 0 or self.in_use + size <= self.limit)
            self.in_use += size
        try:
            yield
        finally:
            with self._changed:
                self.in_use -= size
                self._changed.notify_all()
