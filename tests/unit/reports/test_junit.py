"""JUnit XML as the real tools write it, read into test cases; hostile or broken files become
warnings, never exceptions.

The dialect samples below follow what each tool writes (element and attribute layout,
CDATA, where ``file`` and ``time`` sit); the real-world corpus, when it holds JUnit files,
is read in place as well.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ferrous.reports import junit
from ferrous.reports.junit import JunitReport, parse_junit, seconds


def parse(xml: str | bytes, file: str = "report.xml", **options: int) -> JunitReport:
    data = xml.encode() if isinstance(xml, str) else xml
    return parse_junit(data, file=file, **options)


def outcomes(report: JunitReport) -> list[tuple[str, str, str, str]]:
    return [(c.suite, c.class_name, c.name, c.status) for c in report.cases]


PYTEST = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="1" \
failures="1" skipped="2" tests="5" time="0.140" timestamp="2026-03-01T12:00:00.000000+00:00" \
hostname="ci-7"><testcase classname="tests.test_math" name="test_add" time="0.001" />\
<testcase classname="tests.test_math" name="test_divide[0]" time="0.004"><failure \
message="ZeroDivisionError: division by zero">def test_divide(n):
&gt;       assert 1 / n
E       ZeroDivisionError: division by zero

tests/test_math.py:9: ZeroDivisionError</failure></testcase><testcase \
classname="tests.test_math" name="test_later" time="0.000"><skipped type="pytest.skip" \
message="not on linux">tests/test_math.py:12: not on linux</skipped></testcase><testcase \
classname="tests.test_math" name="test_known_bug" time="0.002"><skipped type="pytest.xfail" \
message="bug 12" /></testcase><testcase classname="tests.test_db" name="test_query" \
time="0.010"><error message="failed on setup with &quot;fixture 'db' not found&quot;">\
file /src/tests/test_db.py, line 3
  def test_query(db):
E       fixture 'db' not found</error></testcase></testsuite></testsuites>"""


def test_pytest() -> None:
    report = parse(PYTEST)
    assert report.warnings == []
    assert outcomes(report) == [
        ("pytest", "tests.test_math", "test_add", "passed"),
        ("pytest", "tests.test_math", "test_divide[0]", "failed"),
        ("pytest", "tests.test_math", "test_later", "skipped"),
        ("pytest", "tests.test_math", "test_known_bug", "skipped"),
        ("pytest", "tests.test_db", "test_query", "error"),
    ]
    passed, failed, skipped, xfail, error = report.cases
    assert (passed.duration, passed.failure, passed.file) == (0.001, None, None)
    assert failed.failure is not None
    # the message is a summary the text lacks at its top: it comes first
    assert failed.failure.startswith("ZeroDivisionError: division by zero\n\ndef test_divide(n):")
    assert ">       assert 1 / n" in failed.failure
    assert skipped.failure == "pytest.skip: not on linux\n\ntests/test_math.py:12: not on linux"
    assert xfail.failure == "pytest.xfail: bug 12"
    assert error.failure is not None
    assert error.failure.startswith("failed on setup with \"fixture 'db' not found\"")


def test_pytest_xunit1_puts_the_file_on_each_case() -> None:
    report = parse(
        '<testsuites><testsuite name="pytest" tests="1"><testcase classname="tests.test_a" '
        'name="test_one" file="tests/test_a.py" line="4" time="0.3"/></testsuite></testsuites>'
    )
    assert report.cases[0].file == "tests/test_a.py"


JEST = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="jest tests" tests="3" failures="1" errors="0" time="2.071">
  <testsuite name="Cart" errors="0" failures="1" skipped="1" timestamp="2026-03-01T12:00:00" \
time="1.113" tests="3">
    <testcase classname="Cart adds an item" name="Cart adds an item" time="0.004" \
file="src/cart.test.ts">
    </testcase>
    <testcase classname="Cart applies a discount" name="Cart applies a discount" time="0.011" \
file="src/cart.test.ts">
      <failure>Error: expect(received).toBe(expected) // Object.is equality

Expected: 90
Received: 100
    at Object.toBe (/app/src/cart.test.ts:14:27)</failure>
    </testcase>
    <testcase classname="Cart removes an item" name="Cart removes an item" time="0" \
file="src/cart.test.ts">
      <skipped/>
    </testcase>
  </testsuite>
</testsuites>
"""


def test_jest_junit() -> None:
    report = parse(JEST)
    assert report.warnings == []
    assert [c.status for c in report.cases] == ["passed", "failed", "skipped"]
    assert {c.suite for c in report.cases} == {"Cart"}
    assert {c.file for c in report.cases} == {"src/cart.test.ts"}
    failed = report.cases[1]
    assert failed.class_name == failed.name == "Cart applies a discount"
    assert failed.failure is not None
    assert failed.failure.startswith("Error: expect(received).toBe(expected)")
    assert failed.failure.endswith("(/app/src/cart.test.ts:14:27)")
    assert report.cases[2].failure is None
    assert report.cases[2].duration == 0.0


GO = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="3" failures="1">
\t<testsuite name="example.com/shop/cart" tests="3" failures="1" errors="0" id="0" \
hostname="ci" time="0.016" timestamp="2026-03-01T12:00:00Z">
\t\t<properties>
\t\t\t<property name="go.version" value="go1.22.1 linux/amd64"></property>
\t\t</properties>
\t\t<testcase name="TestTotal" classname="example.com/shop/cart" time="0.000"></testcase>
\t\t<testcase name="TestDiscount/ten_percent" classname="example.com/shop/cart" time="0.010">
\t\t\t<failure message="Failed"><![CDATA[    cart_test.go:31: got 100, want 90]]></failure>
\t\t</testcase>
\t\t<testcase name="TestRemote" classname="example.com/shop/cart" time="0.000">
\t\t\t<skipped message="Skipped"><![CDATA[    cart_test.go:40: no network]]></skipped>
\t\t</testcase>
\t</testsuite>
</testsuites>
"""


def test_go_junit_report() -> None:
    report = parse(GO)
    assert report.warnings == []
    assert outcomes(report) == [
        ("example.com/shop/cart", "example.com/shop/cart", "TestTotal", "passed"),
        ("example.com/shop/cart", "example.com/shop/cart", "TestDiscount/ten_percent", "failed"),
        ("example.com/shop/cart", "example.com/shop/cart", "TestRemote", "skipped"),
    ]
    # the text keeps its indentation
    assert report.cases[1].failure == "Failed\n\n    cart_test.go:31: got 100, want 90"
    assert report.cases[2].failure == "Skipped\n\n    cart_test.go:40: no network"


SUREFIRE = """<?xml version="1.0" encoding="UTF-8"?>
<testsuite xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xsi:noNamespaceSchemaLocation="https://maven.apache.org/surefire/maven-surefire-plugin/xsd/\
surefire-test-report-3.0.xsd" version="3.0" name="com.example.CartTest" time="1,234.567" \
tests="5" errors="1" skipped="1" failures="1">
  <properties>
    <property name="java.version" value="21.0.2"/>
  </properties>
  <testcase name="addsItem" classname="com.example.CartTest" time="1,200.5"/>
  <testcase name="appliesDiscount" classname="com.example.CartTest" time="0.012">
    <failure message="expected: &lt;90&gt; but was: &lt;100&gt;" \
type="org.opentest4j.AssertionFailedError"><![CDATA[org.opentest4j.AssertionFailedError: \
expected: <90> but was: <100>
\tat com.example.CartTest.appliesDiscount(CartTest.java:27)
]]></failure>
    <system-out><![CDATA[discount=10%
]]></system-out>
  </testcase>
  <testcase name="loadsPrices" classname="com.example.CartTest" time="0.003">
    <error message="no prices" type="java.lang.IllegalStateException">\
java.lang.IllegalStateException: no prices
\tat com.example.Prices.load(Prices.java:12)</error>
  </testcase>
  <testcase name="checksOut" classname="com.example.CartTest" time="0">
    <skipped message="not yet"/>
  </testcase>
  <testcase name="retriesPayment" classname="com.example.CartTest" time="0.050">
    <flakyFailure message="timeout" type="java.net.SocketTimeoutException"/>
  </testcase>
</testsuite>
"""


def test_maven_surefire() -> None:
    report = parse(SUREFIRE)
    assert report.warnings == []
    assert [(c.name, c.status) for c in report.cases] == [
        ("addsItem", "passed"),
        ("appliesDiscount", "failed"),
        ("loadsPrices", "error"),
        ("checksOut", "skipped"),
        ("retriesPayment", "passed"),  # flaky: failed once, then passed
    ]
    assert report.cases[0].duration == 1200.5  # a grouping comma
    failure = report.cases[1].failure
    assert failure is not None
    # the text repeats "type: message": it is not said twice; the case's output follows
    assert failure.startswith("org.opentest4j.AssertionFailedError: expected: <90> but")
    assert failure.count("expected: <90>") == 1
    assert failure.endswith("--- system-out ---\ndiscount=10%")
    assert report.cases[2].failure is not None
    assert report.cases[2].failure.startswith("java.lang.IllegalStateException: no prices\n\tat")
    assert report.cases[3].failure == "not yet"


PHPUNIT = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="" tests="3" assertions="3" errors="0" failures="1" skipped="0" time="0.011">
    <testsuite name="Unit" tests="3" assertions="3" errors="0" failures="1" skipped="0" \
time="0.011">
      <testsuite name="Tests\\Unit\\CartTest" file="/app/tests/Unit/CartTest.php" tests="3" \
assertions="3" errors="0" failures="1" skipped="0" time="0.011">
        <testcase name="testTotal" file="/app/tests/Unit/CartTest.php" line="12" \
class="Tests\\Unit\\CartTest" classname="Tests.Unit.CartTest" assertions="1" time="0.004"/>
        <testsuite name="Tests\\Unit\\CartTest::testDiscount" tests="2" assertions="2" \
errors="0" failures="1" skipped="0" time="0.007">
          <testcase name="testDiscount with data set #0" file="/app/tests/Unit/CartTest.php" \
line="20" class="Tests\\Unit\\CartTest" classname="Tests.Unit.CartTest" assertions="1" \
time="0.003"/>
          <testcase name="testDiscount with data set #1" file="/app/tests/Unit/CartTest.php" \
line="20" class="Tests\\Unit\\CartTest" classname="Tests.Unit.CartTest" assertions="1" \
time="0.004">
            <failure type="PHPUnit\\Framework\\ExpectationFailedException">\
Tests\\Unit\\CartTest::testDiscount with data set #1
Failed asserting that 100 is identical to 90.

/app/tests/Unit/CartTest.php:22</failure>
          </testcase>
        </testsuite>
      </testsuite>
    </testsuite>
  </testsuite>
</testsuites>
"""


def test_phpunit_nested_suites() -> None:
    report = parse(PHPUNIT)
    assert report.warnings == []
    assert [(c.suite, c.class_name, c.status) for c in report.cases] == [
        ("Tests\\Unit\\CartTest", "Tests.Unit.CartTest", "passed"),
        ("Tests\\Unit\\CartTest::testDiscount", "Tests.Unit.CartTest", "passed"),
        ("Tests\\Unit\\CartTest::testDiscount", "Tests.Unit.CartTest", "failed"),
    ]
    assert {c.file for c in report.cases} == {"/app/tests/Unit/CartTest.php"}
    failure = report.cases[2].failure
    assert failure is not None
    assert failure.startswith("PHPUnit\\Framework\\ExpectationFailedException\n\nTests")


def test_the_file_of_a_suite_reaches_its_cases_and_an_unnamed_suite_takes_its_parents_name() -> (
    None
):
    report = parse(
        '<testsuites><testsuite name="outer" file="a.py"><testsuite name="">'
        '<testcase name="t"/></testsuite><testsuite name="inner" filepath="b.spec.js">'
        '<testcase name="u"/></testsuite></testsuite><testcase name="loose"/></testsuites>'
    )
    assert [(c.suite, c.name, c.file) for c in report.cases] == [
        ("outer", "t", "a.py"),
        ("inner", "u", "b.spec.js"),
        ("", "loose", None),
    ]


def test_namespaces_status_attributes_and_missing_attributes() -> None:
    report = parse(
        '<t:testsuite xmlns:t="urn:example" name="ns"><t:testcase name="a">'
        "<t:failure/></t:testcase><t:testcase/>"
        '<t:testcase name="c" status="notrun"/></t:testsuite>'
    )
    assert [(c.name, c.class_name, c.status, c.duration) for c in report.cases] == [
        ("a", "", "failed", None),
        ("", "", "passed", None),
        ("c", "", "skipped", None),
    ]
    assert report.cases[0].failure == ""


def test_a_failure_wins_over_a_skip_and_the_first_failure_is_kept() -> None:
    report = parse(
        '<testsuite name="s"><testcase name="a"><skipped/><error message="e"/>'
        '<failure message="f"/></testcase></testsuite>'
    )
    assert (report.cases[0].status, report.cases[0].failure) == ("error", "e")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.5", 1.5),
        (" 0.000 ", 0.0),
        ("1,234.5", 1234.5),
        ("12,345,678", 12345678.0),
        ("0,5", 0.5),
        ("12,5", 12.5),
        ("0,123", 0.123),  # no group starts with 0: a decimal comma
        ("1.234,5", 1234.5),
        ("1\u00a0234,5", 1234.5),
        ("3e-3", 0.003),
        (None, None),
        ("", None),
        ("fast", None),
        ("-1", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_times(text: str | None, expected: float | None) -> None:
    if expected is None:
        assert seconds(text) is None
    else:
        assert seconds(text) == pytest.approx(expected)


def test_malformed_xml_is_a_warning_naming_the_file_line_and_column() -> None:
    report = parse(
        '<testsuite name="s">\n  <testcase name="a"/>\n  <testcase name="b">\n</testsuite>',
        file="reports/unit.xml",
    )
    assert report.cases == []  # none: what was read before the error is not trusted
    (warning,) = report.warnings
    assert warning.startswith("reports/unit.xml:4:3: malformed XML (mismatched tag)")


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (b"", "report.xml:1:1: malformed XML (no element found)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "report.xml:1:1: malformed XML"),
        (b'<?xml version="1.0" encoding="klingon"?><testsuite/>', "cannot be read"),
        (b'<coverage line-rate="0.8"><packages/></coverage>', "not a JUnit report"),
        ("<testsuite><testcase name='tr\u00e8s'/>".encode("latin-1"), "malformed XML"),
    ],
)
def test_unreadable_files_are_warnings(data: bytes, found: str) -> None:
    report = parse(data)
    assert report.cases == []
    assert len(report.warnings) == 1
    assert found in report.warnings[0]
    assert report.warnings[0].startswith("report.xml")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<testsuites><testsuite name="&lol9;"><testcase name="&lol9;"/></testsuite></testsuites>
"""


def test_an_entity_expansion_bomb_is_refused_at_once() -> None:
    started = time.monotonic()
    report = parse(BILLION_LAUGHS, file="lol.xml")
    assert time.monotonic() - started < 1
    assert report.cases == []
    assert report.warnings == [
        "lol.xml: it declares XML entities or external references, which are refused; "
        "no test cases read from it"
    ]


def test_external_entities_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    report = parse(
        f'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<testsuite name="s"><testcase name="t"><failure>&x;</failure></testcase></testsuite>'
    )
    assert report.cases == []
    assert "refused" in report.warnings[0]


def test_terminal_colours_are_left_out_with_a_warning() -> None:
    report = parse(
        b'<testsuite name="s"><testcase name="t"><failure>\x1b[31mgot 1\x1b[0m, want 2 \x07'
        b"&#27;[1mbold&#x1b;[0m &#x8;</failure></testcase></testsuite>",
        file="go.xml",
    )
    assert [c.failure for c in report.cases] == ["got 1, want 2 ?bold ?"]
    assert report.warnings == [
        "go.xml: characters XML does not allow (terminal colours?) were left out"
    ]


def test_utf16_reports_are_read() -> None:
    xml = '<?xml version="1.0" encoding="UTF-16"?><testsuite name="caf\u00e9"><testcase name="t"/>'
    report = parse((xml + "</testsuite>").encode("utf-16"))
    assert outcomes(report) == [("caf\u00e9", "", "t", "passed")]


def test_failure_text_is_capped_at_64_kib_without_splitting_a_character() -> None:
    assert junit.MAX_FAILURE_BYTES == 64 * 1024
    text = "\u00e9" * 100_000  # two bytes each
    report = parse(
        f'<testsuite><testcase name="t"><failure>{text}</failure></testcase></testsuite>'
    )
    failure = report.cases[0].failure
    assert failure is not None
    assert len(failure.encode()) <= 64 * 1024
    assert failure.startswith("\u00e9" * 1000)
    assert failure.endswith("(cut: longer than 64 KiB)")


def test_the_output_of_a_failed_case_is_kept_within_the_cap() -> None:
    out = "x" * 100_000
    report = parse(
        f'<testsuite><testcase name="t"><failure message="boom"/><system-out>{out}</system-out>'
        f"<system-err>warn</system-err></testcase>"
        f'<testcase name="quiet"><system-out>{out}</system-out></testcase></testsuite>'
    )
    failed, passed = report.cases
    assert failed.failure is not None
    assert failed.failure.startswith("boom\n\n--- system-out ---\nxxx")
    assert len(failed.failure.encode()) <= 64 * 1024
    assert passed.failure is None  # a passed case's output is not kept


def test_cases_beyond_the_cap_are_left_out_with_a_warning() -> None:
    assert junit.MAX_CASES == 100_000
    cases = "".join(f'<testcase name="t{i}"/>' for i in range(5))
    report = parse(f'<testsuite name="s">{cases}</testsuite>', file="many.xml", max_cases=3)
    assert [c.name for c in report.cases] == ["t0", "t1", "t2"]
    assert report.warnings == ["many.xml: more than 3 test cases; the rest were left out"]


def test_long_names_are_cut() -> None:
    report = parse(f'<testsuite name="s"><testcase name="{"n" * 10_000}"/></testsuite>')
    assert len(report.cases[0].name) == junit.MAX_NAME_CHARS


def test_junit_files_of_the_corpus_read_without_an_exception(corpus: Path) -> None:
    files = sorted(
        path
        for path in corpus.rglob("*.xml")
        if path.read_bytes()[:4096].lstrip().find(b"<testsuite") >= 0
    )
    if not files:
        pytest.skip(f"no JUnit XML files in the corpus at {corpus}")
    for path in files:
        report = parse_junit(path.read_bytes(), file=str(path.relative_to(corpus)))
        assert report.cases or report.warnings, path
        for case in report.cases:
            assert case.status in ("passed", "failed", "error", "skipped")
            assert case.failure is None or len(case.failure.encode()) <= junit.MAX_FAILURE_BYTES
