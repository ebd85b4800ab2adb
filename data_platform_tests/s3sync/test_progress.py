from __future__ import annotations

import io

from data_platform.s3sync.progress import Progress, human_bytes


def test_draws_only_when_enabled() -> None:
    stream = io.StringIO()
    progress = Progress("upload", 2, 2048, stream=stream, enabled=True)
    progress.add_bytes(2048)
    progress.file_done()
    progress.file_done()
    progress.close()
    assert "100%" in stream.getvalue()
    assert "2/2 files" in stream.getvalue()
    assert stream.getvalue().endswith("\n")


def test_quiet_when_not_a_terminal() -> None:
    stream = io.StringIO()  # isatty() is False
    progress = Progress("upload", 1, 10, stream=stream)
    progress.add_bytes(10)
    progress.file_done()
    progress.close()
    assert stream.getvalue() == ""


def test_human_bytes() -> None:
    assert human_bytes(512) == "512 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 * 1024**3) == "3.0 GiB"
