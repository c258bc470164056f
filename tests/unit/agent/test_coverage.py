"""Coverage from a job's output by its ``coverage:`` regex, GitLab's examples included."""

from __future__ import annotations

import re
import time

import pytest

from ferrous.agent.coverage import MAX_LINE, CoverageScanner, compile_coverage, coverage_of

# GitLab's documented examples (ci/yaml "coverage" and the testing docs), and a few more.
TABLE = [
    ("/Code coverage: \\d+(?:\\.\\d+)?/", "Code coverage: 67.89% of lines covered", 67.89),
    ("/Code coverage: \\d+(?:\\.\\d+)?/", "Code coverage: 80", 80.0),
    ("/^TOTAL.+?(\\d+\\%)$/", "TOTAL                 812     93    89%", 89.0),
    ("/^TOTAL.+?(\\d+\\%)$/", "TOTAL 10 1 90% trailing", None),
    ("/(\\d+.\\d+%) covered/", "Statements   : 98.37% covered ( 121/123 )", 98.37),
    ("/(\\d+.\\d+%) covered/", "nothing to see", None),
    ("/Lines:\\s*(\\d+.\\d+)%/", "  Lines:   82.50% (1200 of 1454)", 82.5),
    ("/All files[^|]*\\|[^|]*\\s+([\\d\\.]+)/", "All files |   91.3 |  88 |", 91.3),
    ("/coverage: (n\\/a|\\d+)/", "coverage: n/a", None),  # a match without a number
    ("Total coverage: (\\d+)", "Total coverage: 42", 42.0),  # no slashes: taken as is
]


@pytest.mark.parametrize(("pattern", "line", "expected"), TABLE)
def test_gitlab_examples(pattern: str, line: str, expected: float | None) -> None:
    assert coverage_of(compile_coverage(pattern), line) == expected


def test_a_bad_regex_raises_re_error() -> None:
    with pytest.raises(re.error):
        compile_coverage("/(unclosed/")


def scan(pattern: str, *chunks: bytes, mask: tuple[str, ...] = ()) -> float | None:
    scanner = CoverageScanner(compile_coverage(pattern), mask)
    for chunk in chunks:
        scanner.feed(chunk)
    return scanner.finish()


def test_the_last_matching_line_wins_across_any_chunking() -> None:
    text = b"cov 10%\nnoise\ncov 55.5%\nmore noise\ncov 70%\ntail"
    pattern = r"/cov (\d+(?:\.\d+)?)%/"
    assert scan(pattern, text) == 70.0
    for cut in range(1, len(text)):
        assert scan(pattern, text[:cut], text[cut:]) == 70.0
    assert scan(pattern, *(bytes([b]) for b in text)) == 70.0


def test_a_last_line_without_newline_counts() -> None:
    assert scan(r"/cov (\d+)/", b"cov 1\ncov 2") == 2.0
    assert scan(r"/cov (\d+)/", b"nothing") is None


def test_crlf_lines_and_anchors() -> None:
    assert scan(r"/^TOTAL.+?(\d+\%)$/", b"TOTAL  5  1  80%\r\n") == 80.0


def test_masked_secrets_never_reach_the_regex() -> None:
    # the secret is split across chunks; the regex sees [MASKED], not the digits
    chunks = (b"cov 12%\ncov 9", b"9.5%\n")
    assert scan(r"/cov (\S+)%/", *chunks) == 99.5
    assert scan(r"/cov (\S+)%/", *chunks, mask=("99.5",)) == 12.0
    assert scan(r"/cov (\S+)%/", b"cov 12%\ncov 99.5%\n", mask=("99.5",)) == 12.0
    assert scan(r"/cov (.*)/", b"cov 99.5%\n", mask=("99.5",)) is None


def test_long_lines_are_skipped_so_a_bad_regex_cannot_hang() -> None:
    evil = r"/(a+)+$/"  # catastrophic backtracking on a long run of a's and a miss
    started = time.monotonic()
    long_line = b"a" * (MAX_LINE * 50) + b"!\n"
    assert scan(evil, long_line[:1000], long_line[1000:], b"cov\n") is None
    assert time.monotonic() - started < 1.0
    # a long line does not swallow the next one, even when it arrives in pieces
    pieces = [b"x" * 3000, b"x" * 3000, b"y\ncov 5%\n"]
    assert scan(r"/cov (\d+)%/", *pieces) == 5.0
    assert scan(r"/(x+)y/", *pieces) is None
