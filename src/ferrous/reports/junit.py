"""JUnit XML reports read into per-test results.

Every dialect (pytest, Jest's jest-junit, go-junit-report, Maven Surefire, PHPUnit, ...) is
the same skeleton: ``<testsuites>`` or a single ``<testsuite>`` holding suites, possibly
nested, holding ``<testcase>`` elements whose child says how each ended: ``<failure>``,
``<error>``, ``<skipped>``, or nothing (passed). They differ in the details this module
absorbs: where ``file`` sits (test case or suite), ``time`` with grouping commas or decimal
commas (or none), ``message``/``type`` attributes or only text, output per case.

A report is a job's output, so nothing in it may stop the server: malformed XML, an entity
expansion bomb or a million cases become warnings, never exceptions. The file is read with
defusedxml (entity declarations refused) and streamed: each case is dropped once read, so
memory follows the cases kept, not the size of the output they carried.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

TestStatus = Literal["passed", "failed", "error", "skipped"]

MAX_FAILURE_BYTES = 64 * 1024  # of a case's failure text, UTF-8
MAX_CASES = 100_000  # per file
MAX_NAME_CHARS = 4096  # of a suite, class or test name, or a file path
SUITE_TAGS = frozenset({"testsuites", "testsuite"})
#: ``<testcase status=...>`` values (CTest, some converters) that mean it did not run
NOT_RUN = frozenset({"notrun", "disabled", "skipped", "ignored"})
TRUNCATED = "\n... (cut: longer than {limit} KiB)"

# Characters XML 1.0 forbids (terminal colours, mostly) as raw bytes or as references: a
# report that holds them is read again without them.
_ANSI = re.compile(rb"(?:\x1b|&#0*27;|&#x0*1[bB];)\[[0-9;]*[A-Za-z]")
_CONTROL = re.compile(
    rb"[\x00-\x08\x0b\x0c\x0e-\x1f]|&#0*(?:[0-8]|1[124-9]|2[0-9]|3[01]);"
    rb"|&#[xX]0*(?:[0-8bBcCeEfF]|1[0-9a-fA-F]);"
)
_WIDE_ENCODING = (b"\xff\xfe", b"\xfe\xff", b"\x00<", b"<\x00")  # UTF-16/32: left alone
_GROUPED = re.compile(r"[1-9]\d{0,2}(?:,\d{3})+")  # 1,234 or 12,345,678: grouping commas


@dataclass(frozen=True, slots=True, kw_only=True)
class TestCaseResult:
    __test__ = False  # not a pytest test class, despite its name

    suite: str  # the innermost named <testsuite>, "" when the case sits in none
    class_name: str
    name: str
    file: str | None
    duration: float | None  # seconds
    status: TestStatus
    #: the failure's or error's message and text (and the case's output), or why it was
    #: skipped; capped at MAX_FAILURE_BYTES
    failure: str | None


@dataclass(frozen=True, slots=True)
class JunitReport:
    cases: list[TestCaseResult]
    warnings: list[str]  # each names the file


@dataclass(frozen=True, slots=True)
class _Suite:
    name: str
    file: str | None


def parse_junit(data: bytes, *, file: str, max_cases: int = MAX_CASES) -> JunitReport:
    """The test cases of one report file; ``file`` names it in the warnings."""
    try:
        return _read(data, file, max_cases)
    except ParseError as exc:
        cleaned = _without_forbidden_characters(data)
        if cleaned is None:
            return JunitReport([], [_malformed(file, exc)])
        try:
            report = _read(cleaned, file, max_cases)
        except ParseError:
            return JunitReport([], [_malformed(file, exc)])  # the first error is the real one
        except (DefusedXmlException, ValueError, LookupError) as again:
            return JunitReport([], [_refused(file, again)])
        note = f"{file}: characters XML does not allow (terminal colours?) were left out"
        return JunitReport(report.cases, [note, *report.warnings])
    except (DefusedXmlException, ValueError, LookupError) as exc:
        return JunitReport([], [_refused(file, exc)])


def _malformed(file: str, exc: ParseError) -> str:
    line, column = exc.position
    reason = str(exc).split(": line ")[0]
    # expat counts columns from 0, editors from 1
    return f"{file}:{line}:{column + 1}: malformed XML ({reason}); no test cases read from it"


def _refused(file: str, exc: Exception) -> str:
    if isinstance(exc, DefusedXmlException):
        why = "it declares XML entities or external references, which are refused"
    else:
        why = f"it cannot be read ({exc})"
    return f"{file}: {why}; no test cases read from it"


def _without_forbidden_characters(data: bytes) -> bytes | None:
    """``data`` without the characters XML forbids, or None when that changes nothing."""
    if data.startswith(_WIDE_ENCODING):
        return None
    cleaned = _CONTROL.sub(b"?", _ANSI.sub(b"", data))
    return None if cleaned == data else cleaned


def _read(data: bytes, file: str, max_cases: int) -> JunitReport:
    cases: list[TestCaseResult] = []
    warnings: list[str] = []
    for case in _cases(data, file, warnings):
        if len(cases) >= max_cases:
            warnings.append(f"{file}: more than {max_cases} test cases; the rest were left out")
            break
        cases.append(case)
    return JunitReport(cases, warnings)


def _cases(data: bytes, file: str, warnings: list[str]) -> Iterator[TestCaseResult]:
    """Each case as its ``</testcase>`` is read; read elements are detached from their
    parents at once, so a suite's memory does not grow with its output."""
    open_elements: list[Element] = []
    suites: list[_Suite] = []
    for event, element in iterparse(io.BytesIO(data), events=("start", "end")):
        tag = _local(element.tag)
        if event == "start":
            if not open_elements and tag not in SUITE_TAGS:
                warnings.append(f"{file}: not a JUnit report (its root element is <{tag}>)")
                return
            open_elements.append(element)
            if tag == "testsuite":
                suites.append(_suite(element, suites[-1] if suites else None))
            continue
        open_elements.pop()
        parent = open_elements[-1] if open_elements else None
        if tag == "testcase":
            yield _case(element, suites[-1] if suites else None)
        elif tag == "testsuite":
            suites.pop()
        if parent is not None and _local(parent.tag) in SUITE_TAGS:
            parent.remove(element)


def _local(tag: str) -> str:
    """The tag without its namespace (``{urn:x}testcase`` -> ``testcase``)."""
    return tag.rpartition("}")[2]


def _text(value: str | None) -> str:
    return (value or "").strip()[:MAX_NAME_CHARS]


def _suite(element: Element, outer: _Suite | None) -> _Suite:
    name = _text(element.get("name")) or (outer.name if outer else "")
    own_file = _text(element.get("file") or element.get("filepath"))
    return _Suite(name=name, file=own_file or (outer.file if outer else None))


def _case(element: Element, suite: _Suite | None) -> TestCaseResult:
    status, failure = _outcome(element)
    file = _text(element.get("file")) or (suite.file if suite else None)
    return TestCaseResult(
        suite=suite.name if suite else "",
        class_name=_text(element.get("classname") or element.get("class")),
        name=_text(element.get("name")),
        file=file or None,
        duration=seconds(element.get("time")),
        status=status,
        failure=None if failure is None else _capped(failure),
    )


def _outcome(element: Element) -> tuple[TestStatus, str | None]:
    """How the case ended, and the text that says why. A failure or an error wins over a
    skip; Surefire's ``rerunFailure``/``flakyFailure`` (a rerun's story) are not outcomes."""
    status: TestStatus = "passed"
    detail: str | None = None
    output: list[str] = []
    for child in element:
        tag = _local(child.tag)
        if tag in ("failure", "error") and status in ("passed", "skipped"):
            status = "failed" if tag == "failure" else "error"
            detail = _describe(child)
        elif tag == "skipped" and status == "passed":
            status = "skipped"
            detail = _describe(child) or None
        elif tag in ("system-out", "system-err") and (child.text or "").strip():
            output.append(f"--- {tag} ---\n{(child.text or '').strip()}")
    if status == "passed" and (element.get("status") or "").lower() in NOT_RUN:
        status = "skipped"
    if status in ("failed", "error") and output:
        detail = "\n\n".join([detail or "", *output]).strip()
    return status, detail


def _describe(element: Element) -> str:
    """``type: message`` then the text, the heading left out when the text starts with it
    (Surefire repeats it; pytest's message is a summary its text lacks at the top)."""
    message = (element.get("message") or "").strip()
    kind = (element.get("type") or "").strip()
    if kind and message and not message.startswith(kind):
        heading = f"{kind}: {message}"
    else:
        heading = message or kind
    text = (element.text or "").strip("\r\n").rstrip()
    if not text:
        return heading
    if not heading or text.lstrip().startswith(heading):
        return text
    return f"{heading}\n\n{text}"


def _capped(text: str, limit: int = MAX_FAILURE_BYTES) -> str:
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    note = TRUNCATED.format(limit=limit // 1024)
    kept = encoded[: limit - len(note.encode())].decode(errors="ignore")
    return kept + note


def seconds(value: str | None) -> float | None:
    """A ``time`` attribute in seconds: ``1.5``, ``1,234.5`` (grouping), ``0,5`` or
    ``1.234,5`` (decimal comma); None when missing, unreadable, negative or not finite."""
    if value is None:
        return None
    text = value.strip().replace("\u00a0", "").replace(" ", "")
    if "," in text:
        if "." in text:  # the last of the two separates the decimals
            if text.rfind(",") > text.rfind("."):
                text = text.replace(".", "").replace(",", ".")
            else:
                text = text.replace(",", "")
        elif _GROUPED.fullmatch(text):
            text = text.replace(",", "")
        else:
            text = text.replace(",", ".")
    try:
        result = float(text)
    except ValueError:
        return None
    return result if math.isfinite(result) and result >= 0 else None
