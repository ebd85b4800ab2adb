"""A plain-text progress bar of a sync on stderr, drawn only when stderr is a terminal."""

from __future__ import annotations

import threading
import time
from typing import TextIO

from data_platform.core.terminal import StatusLine

_BAR_WIDTH = 24


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


class Progress:
    """Thread-safe counters of files and bytes, shown as a bar on a terminal."""

    def __init__(
        self,
        label: str,
        total_files: int,
        total_bytes: int,
        stream: TextIO | None = None,
        enabled: bool | None = None,
    ) -> None:
        self.label = label
        self.total_files = total_files
        self.total_bytes = total_bytes
        self.files_done = 0
        self.bytes_done = 0
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._line = StatusLine(stream, enabled)

    def add_bytes(self, count: int) -> None:
        with self._lock:
            self.bytes_done += count
        self._line.update(self._render)

    def file_done(self) -> None:
        with self._lock:
            self.files_done += 1
        self._line.update(self._render)

    def close(self) -> None:
        self._line.finish(self._render)

    def _render(self) -> str:
        with self._lock:
            files, done = self.files_done, self.bytes_done
        fraction = done / self.total_bytes if self.total_bytes else files / max(self.total_files, 1)
        filled = int(_BAR_WIDTH * min(fraction, 1.0))
        rate = done / max(time.monotonic() - self._started, 1e-6)
        return (
            f"{self.label} [{'#' * filled}{'-' * (_BAR_WIDTH - filled)}] {fraction:4.0%} "
            f"{files}/{self.total_files} files "
            f"{human_bytes(done)}/{human_bytes(self.total_bytes)} {human_bytes(rate)}/s"
        )
