import io

from data_platform.core.terminal import StatusLine


def test_redraws_are_throttled_and_finish_keeps_the_last_state() -> None:
    stream = io.StringIO()
    line = StatusLine(stream, enabled=True)
    line.update(lambda: "one")
    line.update(lambda: "two")  # within 0.1 s of the first: skipped
    line.finish(lambda: "done")
    text = stream.getvalue()
    assert "one" in text and "two" not in text
    assert text.endswith("\rdone\x1b[K\n")


def test_clear_erases_and_a_non_terminal_gets_nothing() -> None:
    stream = io.StringIO()
    line = StatusLine(stream, enabled=True)
    line.update(lambda: "working")
    line.clear()
    assert stream.getvalue().endswith("\r\x1b[K")
    quiet = io.StringIO()  # StringIO.isatty() is False
    StatusLine(quiet).update(lambda: "x", force=True)
    assert quiet.getvalue() == ""
