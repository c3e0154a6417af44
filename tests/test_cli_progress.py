"""The terminal status line: progress for long files and live partials, never garbage in pipes."""

from __future__ import annotations

import io

from beluga_voice.cli.progress import CLEAR_TO_END, ProgressBar, StatusLine, is_terminal


def test_a_pipe_or_file_is_not_a_terminal() -> None:
    assert not is_terminal(io.StringIO())
    closed = io.StringIO()
    closed.close()
    assert not is_terminal(closed)


def test_status_line_redraws_in_place_and_clears_without_a_trace() -> None:
    stream = io.StringIO()
    line = StatusLine(stream, width=40)
    line.clear()
    assert stream.getvalue() == "", "nothing to clear before anything was shown"
    line.show("hello\nthere")
    line.show("hello there you")
    assert stream.getvalue() == f"\rhello there{CLEAR_TO_END}\rhello there you{CLEAR_TO_END}"
    line.clear()
    assert stream.getvalue().endswith(f"\r{CLEAR_TO_END}")
    assert "\n" not in stream.getvalue(), "a status line never scrolls the terminal"


def test_a_long_partial_keeps_its_newest_words_within_the_width() -> None:
    stream = io.StringIO()
    StatusLine(stream, width=20).show("one two three four five six seven eight")
    drawn = stream.getvalue().removeprefix("\r").removesuffix(CLEAR_TO_END)
    assert len(drawn) < 20
    assert drawn.startswith("…") and drawn.endswith("six seven eight")


def test_progress_bar_shows_fraction_media_time_and_eta() -> None:
    bar = ProgressBar("call.wav", 90.0, StatusLine(io.StringIO(), width=120))
    bar.update(45.0)
    text = bar.render(elapsed=10.0)
    assert text.startswith("call.wav [############------------]  50% 0:45/1:30")
    assert text.endswith("ETA 0:10")
    bar.update(30.0)
    assert bar.done == 45.0, "progress never goes backwards"
    bar.update(500.0)
    assert bar.render(elapsed=20.0) == "call.wav [########################] 100% 1:30/1:30"


def test_progress_bar_redraws_at_most_ten_times_a_second_and_clears_on_close() -> None:
    stream = io.StringIO()
    bar = ProgressBar("x", 3600.0, StatusLine(stream, width=120))
    for second in range(100):
        bar.update(float(second))
    assert stream.getvalue().count("\r") == 1, "a burst of results draws once"
    bar.close()
    assert stream.getvalue().endswith(f"\r{CLEAR_TO_END}")
    assert "1:00:00" in bar.render(1.0), "hours appear for long recordings"
