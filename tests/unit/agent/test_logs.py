from __future__ import annotations

import io
import time

from ferrous.agent.logs import MAX_PARTIAL_LINE, Console, JobOutput, prefix_lines


def test_prefix_lines_keeps_the_unfinished_line() -> None:
    assert prefix_lines(b"a\nb\nc", b"> ") == (b"> a\n> b\n", b"c")
    assert prefix_lines(b"no newline", b"> ") == (b"", b"no newline")
    assert prefix_lines(b"\n\n", b"> ") == (b"> \n> \n", b"")
    assert prefix_lines(b"", b"> ") == (b"", b"")


def outputs(color: bool = False) -> tuple[io.BytesIO, io.BytesIO, JobOutput]:
    screen, log = io.BytesIO(), io.BytesIO()
    console = Console(screen, color=color, name_width=5)
    log.close = lambda: None  # type: ignore[method-assign]  # keep it readable after close()
    return screen, log, JobOutput(console, "build", log)


def test_lines_split_across_chunks_are_joined() -> None:
    screen, log, out = outputs()
    out.write(b"hel")
    out.write(b"lo\nwor")
    out.write(b"ld\n")
    assert screen.getvalue() == b"build | hello\nbuild | world\n"
    assert log.getvalue() == b"hello\nworld\n"


def test_an_unfinished_last_line_is_flushed_at_close() -> None:
    screen, log, out = outputs()
    out.write(b"partial")
    out.close()
    assert screen.getvalue() == b"build | partial\n"
    assert log.getvalue() == b"partial\n"


def test_notes_start_on_their_own_line() -> None:
    screen, _, out = outputs()
    out.write(b"progress...")
    out.note("Job succeeded")
    assert screen.getvalue() == b"build | progress...\nbuild | Job succeeded\n"


def test_a_huge_line_is_not_held_back_for_ever() -> None:
    screen, _, out = outputs()
    out.write(b"x" * (MAX_PARTIAL_LINE + 10))
    assert screen.getvalue().startswith(b"build | xxx")


def test_color_prefix_differs_per_job() -> None:
    console = Console(io.BytesIO(), color=True, name_width=3)
    first, second = console.prefix("a"), console.prefix("b")
    assert first != second
    assert first.startswith(b"\x1b[")
    assert console.prefix("a") == first


def test_fifty_megabytes_of_lines_are_prefixed_quickly() -> None:
    screen, _log, out = outputs()
    chunk = b"some log line of moderate length 0123456789\n" * 20000  # ~900 kB
    started = time.perf_counter()
    for _ in range(56):
        out.write(chunk)
    took = time.perf_counter() - started
    assert screen.getvalue().count(b"\n") == 56 * 20000
    assert took < 2.0


class ClosedPipe(io.BytesIO):
    def write(self, data: bytes) -> int:  # type: ignore[override]
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_console_falls_silent_and_the_log_goes_on() -> None:
    console = Console(ClosedPipe(), color=False)
    log = io.BytesIO()
    log.close = lambda: None  # type: ignore[method-assign]
    out = JobOutput(console, "job", log)
    out.write(b"first\n")
    out.write(b"second\n")
    assert console.broken
    assert log.getvalue() == b"first\nsecond\n"
