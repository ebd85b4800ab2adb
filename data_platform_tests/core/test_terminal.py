import io

from data_platform.core.terminal import StatusLine


def test_redraws_are_throttled_and_finish_keeps_the_last_state() -> None:
    stream = io.StringIO()
    now = [100.0]
    line = StatusLine(stream, enabled=True, clock=lambda: now[0])
    line.update(lambda: "one")
    now[0] += 0.05
    line.update(lambda: "two")  # 0.05 s after the last draw: skipped
    now[0] += 0.06
    line.update(lambda: "three")  # 0.11 s after it: drawn
    line.finish(lambda: "done")
    text = stream.getvalue()
    assert "one" in text and "two" not in text and "three" in text
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
