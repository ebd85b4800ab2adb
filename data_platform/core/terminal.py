"""One self-overwriting status line on stderr, drawn only when stderr is a terminal."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

REDRAW_SECONDS = 0.1


class StatusLine:
    """Redraws at most every 0.1 s; quiet (and free) when the stream is not a terminal."""

    def __init__(
        self,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._clock = clock
        self._last_draw = -REDRAW_SECONDS
        self._lock = threading.Lock()

    def update(self, render: Callable[[], str], force: bool = False) -> None:
        """Draw `render()` unless the line was drawn less than 0.1 s ago (or `force`)."""
        if not self.enabled:
            return
        now = self._clock()
        with self._lock:
            if not force and now - self._last_draw < REDRAW_SECONDS:
                return
            self._last_draw = now
            self.stream.write(f"\r{render()}\033[K")
            self.stream.flush()

    def clear(self) -> None:
        """Erase the line, so ordinary output can follow."""
        if self.enabled:
            with self._lock:
                self.stream.write("\r\033[K")
                self.stream.flush()

    def finish(self, render: Callable[[], str]) -> None:
        """Draw the final state and keep it."""
        if self.enabled:
            self.update(render, force=True)
            with self._lock:
                self.stream.write("\n")
                self.stream.flush()
