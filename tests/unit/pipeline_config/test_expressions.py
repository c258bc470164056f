"""The ``rules:if`` expression language, checked against GitLab's documented behaviour."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ferrous.domain.errors import ConfigInvalid
from ferrous.pipeline_config.expressions import (
    Expression,
    ExpressionError,
    evaluate,
    parse_expression,
)

VARIABLES = {
    "CI_COMMIT_BRANCH": "main",
    "CI_DEFAULT_BRANCH": "main",
    "CI_PIPELINE_SOURCE": "merge_request_event",
    "CI_COMMIT_TAG": "v1.2.3",
    "CI_COMMIT_MESSAGE": "Update docs [SKIP CI]\n\nLonger body\n",
    "PRESENT": "my variable",
    "EMPTY": "",
    "ONE": "1",
    "TAG_PATTERN": "/^v\\d+/",
    "CI_PATTERN": "/SKIP CI/i",
    "PLAIN": "feature-branch",
    "BROKEN_PATTERN": "/(/",
    "QUOTE": 'say "hi"',
    "SLASHED": "release/1.0",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # GitLab documentation examples
        ("$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH", True),
        ('$CI_PIPELINE_SOURCE == "merge_request_event"', True),
        (r"$CI_COMMIT_TAG =~ /^v\d+\.\d+/", True),
        (r"$CI_COMMIT_MESSAGE =~ /\[skip ci\]/i", True),
        (r"$CI_COMMIT_MESSAGE =~ /\[skip ci\]/", False),
        ('($ONE == "1" || $UNDEFINED) && $PRESENT != null', True),
        ('($ONE == "2" || $UNDEFINED) && $PRESENT != null', False),
        ('($ONE == "2" || $PRESENT) && $UNDEFINED != null', False),
        # a lone variable: defined and non-empty
        ("$PRESENT", True),
        ("$EMPTY", False),
        ("$UNDEFINED", False),
        ("${PRESENT}", True),
        ("${EMPTY}", False),
        ('"text"', True),
        ('""', False),
        ("null", False),
        # equality, null and the empty string (GitLab's statement_spec)
        ('$PRESENT == "my variable"', True),
        ("$PRESENT == 'my variable'", True),
        ('"my variable" == $PRESENT', True),
        ("$PRESENT == null", False),
        ("$EMPTY == null", False),
        ('"" == $EMPTY', True),
        ('$EMPTY == ""', True),
        ("$UNDEFINED == null", True),
        ("null == $UNDEFINED", True),
        ('$UNDEFINED == ""', False),
        ("$UNDEFINED != null", False),
        ("$EMPTY != null", True),
        ('"" != $EMPTY', False),
        ("null == null", True),
        ("$UNDEFINED == $ALSO_UNDEFINED", True),
        ("$EMPTY == $UNDEFINED", False),
        ('${PRESENT} == "my variable"', True),
        ('$ONE == "1"', True),
        ("$ONE == '01'", False),
        ('$PRESENT == "My Variable"', False),
        # strings: both quotes, escaped quotes, no other escapes
        (r'$QUOTE == "say \"hi\""', True),
        ("$QUOTE == 'say \"hi\"'", True),
        ("'it\\'s' == \"it's\"", True),
        (r'"a\nb" == "a" ', False),
        (r'"C:\dir" =~ /C:\\dir/', True),
        ('"$PRESENT" == "my variable"', False),
        # regex literals: unanchored search unless anchored
        ("$PRESENT =~ /var/", True),
        ("$PRESENT =~ /^var/", False),
        ("$PRESENT =~ /var.*e$/", True),
        ("$PRESENT =~ /^my variable$/", True),
        ("$PRESENT =~ /VAR/", False),
        ("$PRESENT =~ /VAR/i", True),
        ("$PRESENT !~ /VAR/i", False),
        ("$PRESENT !~ /nope/", True),
        (r"$SLASHED =~ /^release\/\d/", True),
        (r"$SLASHED =~ /^v\/ar/", False),
        ("$CI_COMMIT_MESSAGE =~ /CI].Longer/", False),
        ("$CI_COMMIT_MESSAGE =~ /CI].*Longer/s", True),
        ("$CI_COMMIT_MESSAGE =~ /^Longer body$/", False),
        ("$CI_COMMIT_MESSAGE =~ /^Longer body$/m", True),
        ("$CI_COMMIT_MESSAGE =~ /^longer BODY$/mi", True),
        ("$CI_COMMIT_MESSAGE =~ /(?m)^Longer body$/", True),
        ("$CI_COMMIT_TAG =~ /^v.+?$/U", True),
        # RE2 reads $ as end of text: no match before a final newline
        ('"release\n" =~ /^release$/', False),
        ('"release" =~ /^release$/', True),
        (r"$CI_COMMIT_TAG =~ /\Av[0-9]+\.[0-9]+\.[0-9]+\z/", True),
        (r"$CI_COMMIT_TAG =~ /\Av[0-9]+\z/", False),
        ("$CI_COMMIT_TAG =~ /^v[[:digit:]]/", True),
        ("$CI_COMMIT_TAG =~ /^[[:alpha:]][[:digit:]]/", True),
        ("$CI_COMMIT_TAG =~ /^[^[:digit:]]+$/", False),
        ("$CI_COMMIT_TAG =~ /^(?<major>v1)\\./", True),
        ("$SLASHED =~ /[]x]/", False),
        ("$SLASHED =~ /[^]x]/", True),
        # an undefined left side never matches
        ("$UNDEFINED =~ /.*/", False),
        ("$UNDEFINED !~ /.*/", True),
        ("$UNDEFINED !~ /var/", True),
        ("$EMPTY =~ /var/", False),
        ("$EMPTY !~ /var/", True),
        ("$EMPTY =~ /^$/", True),
        ("null =~ /.*/", False),
        # a pattern held in a variable (GitLab 15+)
        ("$CI_COMMIT_TAG =~ $TAG_PATTERN", True),
        ("$PRESENT =~ $TAG_PATTERN", False),
        ("$PRESENT !~ $TAG_PATTERN", True),
        ("$CI_COMMIT_MESSAGE =~ $CI_PATTERN", True),
        ('$CI_COMMIT_TAG =~ "/^V1/i"', True),
        ('"abcde" =~ "/^ab.*/"', True),
        ('"dfg" =~ "/^ab.*/"', False),
        # a value that is not /pattern/: matches when the left occurs inside it, as
        # GitLab's String#scan does
        ('"feature" =~ $PLAIN', True),
        ('"branch" =~ $PLAIN', True),
        ('"feature-branch-2" =~ $PLAIN', False),
        ("$PLAIN =~ $PLAIN", True),
        ('"(" =~ $BROKEN_PATTERN', True),
        ('"x" =~ $BROKEN_PATTERN', False),
        ("$PRESENT =~ $UNDEFINED", False),
        ("$PRESENT !~ $UNDEFINED", True),
        ("$PRESENT =~ null", False),
        ("$PRESENT !~ null", True),
        ("$UNDEFINED =~ $PLAIN", False),
        # && binds tighter than ||; parentheses override
        ("$PRESENT || $EMPTY && $EMPTY", True),
        ("$EMPTY && $EMPTY || $PRESENT", True),
        ("($PRESENT || $EMPTY) && $EMPTY", False),
        ("$EMPTY && ($EMPTY || $PRESENT)", False),
        ("$PRESENT && $ONE && $CI_COMMIT_TAG", True),
        ("$PRESENT && $ONE && $EMPTY", False),
        ("$EMPTY || $UNDEFINED || $ONE", True),
        ("$EMPTY || $UNDEFINED || null", False),
        ("((($PRESENT)))", True),
        ("((($EMPTY)))", False),
        ('($ONE) == "1"', True),
        ('(($ONE)) == ("1")', True),
        ("$PRESENT =~ (/var/)", True),
        ("(($ONE == '1') && ($PRESENT =~ /my/)) || ($EMPTY)", True),
        # empty strings are false on either side of && and || (see the module docstring)
        ("$EMPTY && $PRESENT", False),
        ("$EMPTY || $PRESENT", True),
        ("$PRESENT && $EMPTY", False),
        # whitespace is free
        ('$ONE=="1"&&$PRESENT', True),
        ('  $ONE\t==\n"1"  ||  $EMPTY  ', True),
        ("$PRESENT=~/var/i&&$ONE", True),
    ],
)
def test_evaluate(text: str, expected: bool) -> None:
    assert evaluate(text, VARIABLES) is expected


def test_the_same_expression_gives_different_answers_for_different_variables() -> None:
    expression = parse_expression('$CI_PIPELINE_SOURCE == "push" || $CI_COMMIT_TAG')
    assert expression.evaluate({"CI_PIPELINE_SOURCE": "push"}) is True
    assert expression.evaluate({"CI_COMMIT_TAG": "v1"}) is True
    assert expression.evaluate({"CI_PIPELINE_SOURCE": "web"}) is False
    assert expression.evaluate({}) is False


def test_parsing_is_cached_and_expressions_compare_by_text() -> None:
    text = '$CACHED == "yes" && $OTHER'
    assert parse_expression(text) is parse_expression(text)
    assert Expression(text) == parse_expression(text)
    assert Expression(text) != Expression('$CACHED == "no"')
    assert hash(Expression(text)) == hash(parse_expression(text))
    assert parse_expression(text).text == text


@pytest.mark.parametrize(
    ("text", "offset", "message"),
    [
        ("", 0, "empty expression"),
        ("   \t ", 0, "empty expression"),
        ("$A ==", 5, "expected a value after '=='"),
        ("$A == ", 6, "expected a value after '=='"),
        ("$A &&", 5, "expected a value after '&&'"),
        ("$A && || $B", 6, "expected a value after '&&', found '||'"),
        ("== $A", 0, "expected a value first, found '=='"),
        ("|| $A", 0, "expected a value first"),
        ("()", 1, "expected a value after '('"),
        ('$VAR == "unterminated', 8, "unterminated string starting at 8"),
        ("$VAR == 'x", 8, "unterminated string starting at 8"),
        (r'$VAR == "ends with escaped quote\"', 8, "unterminated string starting at 8"),
        ("$VAR =~ /abc", 8, "unterminated regex starting at 8"),
        (r"$VAR =~ /abc\/", 8, "unterminated regex starting at 8"),
        ("$VAR =~ //", 8, "empty regex"),
        ("$VAR =~ /(/", 8, "invalid regex /(/"),
        ("$VAR =~ /a{2,1}/", 8, "invalid regex"),
        ("$VAR =~ /[[:nope:]]/", 8, "unsupported character class [:nope:]"),
        ("$VAR =~ /a/x", 11, "unknown regex flag 'x'"),
        ("$VAR =~ /a/ig", 12, "unknown regex flag 'g'"),
        ("($A == $B", 0, "'(' at 0 is never closed"),
        ("(($A) && $B", 0, "'(' at 0 is never closed"),
        ("$A && ($B", 6, "'(' at 6 is never closed"),
        ("($A $B)", 4, "expected ')' to close '(' at 0, found '$B'"),
        ("$A)", 2, "unmatched ')'"),
        ("($A))", 4, "unmatched ')'"),
        ('$A "x"', 3, "expected an operator"),
        ("$A $B", 3, "expected an operator (==, !=, =~, !~, &&, ||) after '$A', found '$B'"),
        ('$A = "1"', 3, "did you mean '=='?"),
        ("$A & $B", 3, "did you mean '&&'?"),
        ("$A | $B", 3, "did you mean '||'?"),
        ("!$A", 0, "there is no '!' negation"),
        ("$A == 1", 6, "numbers must be quoted: '1'"),
        ("$A == main", 6, "quote a string ('main') or add '$' for a variable ($main)"),
        ("$A == nulls", 6, "unexpected 'nulls'"),
        ("$A == true", 6, "unexpected 'true'"),
        ("$A == @", 6, "unexpected '@'"),
        ("$", 0, "expected a variable name after '$'"),
        ("$A == $", 6, "expected a variable name after '$'"),
        ("$-", 0, "expected a variable name after '$'"),
        ("${A", 0, "'${' at 0 is never closed"),
        ("${A-B}", 2, "invalid variable name 'A-B'"),
        ("${}", 2, "invalid variable name ''"),
        ("$A == $B == $C", 9, "comparisons cannot be chained"),
        ("/abc/", 0, "a regex alone is not a condition"),
        ("$A && /abc/", 6, "a regex alone is not a condition"),
        (
            "$A == /abc/",
            6,
            "the right side of '==' must be a variable, string or null, not a regex",
        ),
        ("/abc/ =~ $A", 0, "the left side of '=~' must be a variable, string or null"),
        ("($A == $B) == $C", 0, "the left side of '==' must be a variable, string or null"),
        ("$C == ($A == $B)", 6, "the right side of '==' must be a variable, string or null"),
        ("$C =~ ($A || $B)", 6, "the right side of '=~' must be"),
        ("(" * 60 + "$A" + ")" * 60, 50, "more than 50 nested parentheses"),
    ],
)
def test_malformed_expressions_say_what_and_where(text: str, offset: int, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)
    assert message in caught.value.message
    assert caught.value.offset == offset
    assert str(caught.value) == f"{caught.value.message} (at offset {offset})"


def test_expression_error_belongs_to_both_error_trees() -> None:
    with pytest.raises(ExpressionError) as caught:
        Expression("$A ==")
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, ConfigInvalid)


def test_deep_but_allowed_nesting_parses() -> None:
    assert evaluate("(" * 50 + "$A" + ")" * 50, {"A": "x"}) is True


def test_long_chains_do_not_recurse() -> None:
    text = " || ".join(f"$V{i}" for i in range(2000))
    assert evaluate(text, {"V1999": "x"}) is True
    assert evaluate(text, {}) is False
    text = " && ".join(f"$V{i}" for i in range(2000))
    assert evaluate(text, {f"V{i}": "x" for i in range(2000)}) is True


# Property tests: random trees against a plain Python reference ------------------------------

NAMES = ["A", "B", "C"]
# "" three times: empty versus undefined is where implementations most often go wrong
VALUES = ["", "", "", "a", "b", "ab", "A", "a b", "a/b", "it's", 'say "a"', "/a/", "/A/i", "/(/"]
PATTERNS = ["a", "^a", "b", "a.b", "[ab]+", "x|a", r"\d", "a/b", "^A", " ", "^(a|b)b?", "b*", "^"]

Tree = tuple[Any, ...]

values = st.one_of(
    st.tuples(st.just("var"), st.sampled_from(NAMES)),
    st.tuples(
        st.just("str"), st.one_of(st.sampled_from(VALUES), st.text("ab '\"/$()&|=", max_size=4))
    ),
    st.just(("null",)),
)
regexes = st.tuples(st.just("re"), st.sampled_from(PATTERNS), st.sampled_from(["", "i", "s"]))
comparisons = st.one_of(
    st.tuples(st.sampled_from(["==", "!="]), values, values),
    st.tuples(st.sampled_from(["=~", "!~"]), values, st.one_of(regexes, values)),
)
trees = st.recursive(
    st.one_of(values, comparisons),
    lambda kids: st.tuples(st.sampled_from(["&&", "||"]), kids, kids),
    max_leaves=10,
)
environments = st.fixed_dictionaries({}, optional=dict.fromkeys(NAMES, st.sampled_from(VALUES)))


def reference_value(tree: Tree, env: Mapping[str, str]) -> str | None:
    if tree[0] == "var":
        return env.get(tree[1])
    if tree[0] == "str":
        return str(tree[1])
    return None


def reference_matches(left: str | None, right: Tree, env: Mapping[str, str]) -> bool:
    if left is None:
        return False
    if right[0] == "re":
        return re.search(right[1], left, re.I if right[2] == "i" else 0) is not None
    value = reference_value(right, env)
    if value is None:
        return False
    pattern = re.fullmatch(r"/(.*)/(i?)", value)
    if pattern is None:
        return left in value
    try:
        return re.search(pattern[1], left, re.I if pattern[2] else 0) is not None
    except re.error:
        return left in value


def reference(tree: Tree, env: Mapping[str, str]) -> bool:
    op = tree[0]
    if op == "&&":
        return reference(tree[1], env) and reference(tree[2], env)
    if op == "||":
        return reference(tree[1], env) or reference(tree[2], env)
    if op in ("==", "!="):
        equal = reference_value(tree[1], env) == reference_value(tree[2], env)
        return equal if op == "==" else not equal
    if op in ("=~", "!~"):
        found = reference_matches(reference_value(tree[1], env), tree[2], env)
        return found if op == "=~" else not found
    return bool(reference_value(tree, env))


@st.composite
def rendered(draw: st.DrawFn, tree: Tree) -> str:
    """Source text for ``tree``, with random spacing, quoting and optional parentheses."""
    space = draw(st.sampled_from(["", " ", "  ", "\t", "\n "]))
    op = tree[0]
    if op == "var":
        return f"${{{tree[1]}}}" if draw(st.booleans()) else f"${tree[1]}"
    if op == "str":
        quote = draw(st.sampled_from(["'", '"']))
        return quote + str(tree[1]).replace(quote, "\\" + quote) + quote
    if op == "null":
        return "null"
    if op == "re":
        return "/" + str(tree[1]).replace("/", "\\/") + "/" + str(tree[2])
    parts = []
    for child in tree[1:]:
        text = draw(rendered(child))
        needed = op == "&&" and child[0] == "||"
        if needed or draw(st.integers(0, 4)) == 0:
            text = f"({space}{text}{space})"
        parts.append(text)
    return f"{parts[0]}{space}{op}{space}{parts[1]}"


@settings(max_examples=1000, deadline=None)
@given(data=st.data(), tree=trees, env=environments)
def test_random_trees_evaluate_like_the_reference(
    data: st.DataObject, tree: Tree, env: dict[str, str]
) -> None:
    text = data.draw(rendered(tree))
    assert evaluate(text, env) is reference(tree, env), text


@given(
    value=st.one_of(st.text("ab '\"\\"), st.text()).filter(lambda text: not text.endswith("\\")),
    quote=st.sampled_from(["'", '"']),
)
def test_any_string_literal_reads_back_as_written(value: str, quote: str) -> None:
    literal = quote + value.replace(quote, "\\" + quote) + quote
    assert evaluate(f"{literal} == $X", {"X": value}) is True
    assert evaluate(f"$X != {literal}", {"X": value}) is False


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet="$AB{}()'\"/\\ =!~&|nul1i", max_size=30),
    env=environments,
)
def test_arbitrary_text_either_parses_or_raises_expression_error(
    text: str, env: dict[str, str]
) -> None:
    error: ExpressionError | None = None
    try:
        expression = parse_expression(text)
    except ExpressionError as caught:
        error = caught
    if error is None:
        assert isinstance(expression.evaluate(env), bool)
    else:
        assert 0 <= error.offset <= len(text)
        assert error.message


@settings(max_examples=200, deadline=None)
@given(pattern=st.text(max_size=12), text=st.text(max_size=12))
def test_any_variable_value_can_be_matched_against(pattern: str, text: str) -> None:
    # a value from a variable is user data: whatever it holds, =~ must answer, not raise
    env = {"PATTERN": pattern, "TEXT": text}
    assert evaluate("$TEXT =~ $PATTERN", env) is not evaluate("$TEXT !~ $PATTERN", env)


# Real-world expressions ----------------------------------------------------------------------


class _TolerantLoader(yaml.SafeLoader):
    """Reads GitLab's custom tags (``!reference``) as nothing: only plain strings matter here."""


_TolerantLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def _expressions_in(node: object, found: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "if" and isinstance(value, str):
                found.add(value)
            if key in ("only", "except") and isinstance(value, dict):
                found.update(v for v in value.get("variables") or () if isinstance(v, str))
            _expressions_in(value, found)
    elif isinstance(node, list):
        for item in node:
            _expressions_in(item, found)


def test_every_expression_in_the_real_world_corpus_parses(corpus: Path) -> None:
    found: set[str] = set()
    for path in sorted((corpus / "gitlab-ci").rglob("*.y*ml")):
        for document in yaml.load_all(path.read_text(encoding="utf-8"), Loader=_TolerantLoader):
            _expressions_in(document, found)
    assert len(found) > 100
    for text in sorted(found):
        parse_expression(text)
