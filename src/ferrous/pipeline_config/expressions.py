"""The expression language of ``rules:if``, ``only:variables`` and ``workflow:rules:if``.

GitLab's implementation (``lib/gitlab/ci/pipeline/expression/``) is the reference. Where it
behaves by accident rather than by design, we follow the documented intent:

* ``&&`` and ``||`` are plain boolean operators. GitLab combines raw values with Ruby
  truthiness, where ``""`` is true, and only makes a boolean of the final value, so there
  ``$EMPTY && $X`` is true and ``$EMPTY || $X`` false (gitlab-org/gitlab#321371, #358775,
  #463528, all filed as bugs). Here an empty variable is false wherever it stands.
* An undefined left side of ``=~`` never matches, even a pattern that matches ``""``.

Regexes are RE2 in GitLab and Python ``re`` here; the few RE2 spellings Python lacks are
translated, and ``$`` keeps RE2's meaning (end of text unless the ``m`` flag is on).
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from ferrous.domain.errors import ConfigInvalid

_Test: TypeAlias = Callable[[Mapping[str, str]], bool]
_Getter: TypeAlias = Callable[[Mapping[str, str]], "str | None"]

_MAX_DEPTH = 50  # GitLab allows only 100 tokens in all
_SPACE = re.compile(r"\s+")
_NAME = re.compile(r"[A-Za-z0-9_]+")  # GitLab's \$(\w+); Ruby's \w is ASCII
_FLAGS = re.compile(r"[A-Za-z]*")
_WORD = re.compile(r"\w+")
_OPERATORS = ("==", "!=", "=~", "!~", "&&", "||")
_COMPARISONS = frozenset(_OPERATORS[:4])
_HINTS = {
    "=": "did you mean '=='?",
    "&": "did you mean '&&'?",
    "|": "did you mean '||'?",
    "!": "there is no '!' negation: use '!=' or '!~', or compare with null",
}


class ExpressionError(ConfigInvalid, ValueError):
    """The expression is not valid."""

    message: str  # what is wrong, in words a person can act on
    offset: int  # 0-based character offset into the expression text where it went wrong

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset

    def __str__(self) -> str:
        return f"{self.message} (at offset {self.offset})"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "var", "str", "null", "regex", "op", "(", ")" or "end"
    pos: int
    text: str  # as written, for messages
    value: str = ""  # variable name, string contents or regex source
    flags: str = ""


@dataclass(frozen=True, slots=True)
class _Value:
    """A variable, string or null: the things ``==`` can compare and ``=~`` can search."""

    get: _Getter
    token: _Token


@dataclass(frozen=True, slots=True)
class _Regex:
    """A ``/pattern/`` literal, which only means something on the right of ``=~``."""

    pattern: re.Pattern[str]
    token: _Token


_Operand: TypeAlias = "_Value | _Regex | _Test"


@dataclass(frozen=True)
class Expression:
    """A parsed expression; building one parses it, so an ``Expression`` is always valid."""

    text: str
    _test: _Test = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_test", _Parser(self.text).parse())

    def evaluate(self, variables: Mapping[str, str]) -> bool:
        """Decide the expression; a name missing from ``variables`` is undefined (null)."""
        return self._test(variables)


@functools.lru_cache(maxsize=4096)
def parse_expression(text: str) -> Expression:
    """Parse once per distinct text: the same few expressions repeat across many jobs."""
    return Expression(text)


def evaluate(text: str, variables: Mapping[str, str]) -> bool:
    """Parse (cached) and evaluate, for callers that hold only the text."""
    return parse_expression(text).evaluate(variables)


# Lexing --------------------------------------------------------------------------------------


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while True:
        if space := _SPACE.match(text, i):
            i = space.end()
        if i >= n:
            tokens.append(_Token("end", n, "end of expression"))
            return tokens
        char = text[i]
        if char == "$":
            token = _lex_variable(text, i)
        elif char in "\"'":
            token = _lex_string(text, i)
        elif char == "/":
            token = _lex_regex(text, i)
        elif char in "()":
            token = _Token(char, i, char)
        elif op := next((op for op in _OPERATORS if text.startswith(op, i)), None):
            token = _Token("op", i, op)
        elif (word := _WORD.match(text, i)) and word[0] == "null":
            token = _Token("null", i, "null")
        else:
            raise _unknown(text, i, word[0] if word else char)
        tokens.append(token)
        i = token.pos + len(token.text)


def _unknown(text: str, i: int, found: str) -> ExpressionError:
    hint = _HINTS.get(text[i])
    if hint is None and found.isdigit():
        hint = f"numbers must be quoted: '{found}'"
    elif hint is None and (found[0].isalpha() or found[0] == "_"):
        hint = f"quote a string ('{found}') or add '$' for a variable (${found})"
    suffix = f"; {hint}" if hint else ""
    return ExpressionError(f"unexpected {found!r}{suffix}", i)


def _lex_variable(text: str, start: int) -> _Token:
    if text.startswith("{", start + 1):
        close = text.find("}", start + 2)
        if close == -1:
            raise ExpressionError(f"'${{' at {start} is never closed with '}}'", start)
        name = text[start + 2 : close]
        if not _NAME.fullmatch(name):
            raise ExpressionError(f"invalid variable name {name!r}", start + 2)
        return _Token("var", start, text[start : close + 1], name)
    name_match = _NAME.match(text, start + 1)
    if name_match is None:
        raise ExpressionError("expected a variable name after '$'", start)
    return _Token("var", start, text[start : name_match.end()], name_match[0])


def _lex_string(text: str, start: int) -> _Token:
    # GitLab has no escapes: a string runs to the next quote. Only \<quote> is added, so a
    # string GitLab accepts reads the same here unless it ends with a backslash.
    quote, i, parts = text[start], start + 1, []
    while i < len(text):
        char = text[i]
        if char == "\\" and text.startswith(quote, i + 1):
            parts.append(quote)
            i += 2
        elif char == quote:
            return _Token("str", start, text[start : i + 1], "".join(parts))
        else:
            parts.append(char)
            i += 1
    raise ExpressionError(f"unterminated string starting at {start}: close it with {quote}", start)


def _lex_regex(text: str, start: int) -> _Token:
    i, parts = start + 1, []
    while i < len(text) and text[i] != "/":
        if text[i] == "\\" and i + 1 < len(text):
            parts.append("/" if text[i + 1] == "/" else text[i : i + 2])
            i += 2
        else:
            parts.append(text[i])
            i += 1
    if i >= len(text):
        raise ExpressionError(f"unterminated regex starting at {start}: close it with /", start)
    source = "".join(parts)
    if not source:
        raise ExpressionError("empty regex '//': GitLab rejects it; use /.*/ to match all", start)
    flags = _FLAGS.match(text, i + 1)[0]  # type: ignore[index]  # [A-Za-z]* always matches
    for k, flag in enumerate(flags):
        if flag not in "imsU":
            raise ExpressionError(
                f"unknown regex flag {flag!r}: GitLab allows i, m, s, U", i + 1 + k
            )
    return _Token("regex", start, text[start : i + 1 + len(flags)], source, flags)


# Regexes -------------------------------------------------------------------------------------

_POSIX = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z",
    "print": " -~", "punct": "!-/:-@\\[-`{-~", "space": "\\t\\n\\v\\f\\r ", "upper": "A-Z",
    "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f",
}  # fmt: skip
_INLINE_MULTILINE = re.compile(r"\(\?[isU]*m")
_FLAG_BITS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "U": 0}
# U (ungreedy) is dropped: greediness changes which match is found, never whether one is.
_VALUE_PATTERN = re.compile(r"/(.*)/([ismU]*)")


def _translate(source: str, multiline: bool) -> str:
    """Rewrite RE2 spellings that Python's ``re`` lacks or reads differently."""
    out: list[str] = []
    i, n, in_class = 0, len(source), False
    while i < n:
        char = source[i]
        if char == "\\" and i + 1 < n:
            out.append("\\Z" if source[i + 1] == "z" else source[i : i + 2])
            i += 2
            continue
        if in_class:
            if source.startswith("[:", i) and (end := source.find(":]", i)) != -1:
                name = source[i + 2 : end]
                if name not in _POSIX:
                    raise re.error(f"unsupported character class [:{name}:]")
                out.append(_POSIX[name])
                i = end + 2
                continue
            in_class = char != "]"
            out.append("\\[" if char == "[" else char)
        elif char == "[":
            in_class = True
            out.append(char)
            for lead in "^]":  # a leading ^ negates; a ] right after [ or [^ is literal
                if source.startswith(lead, i + 1):
                    out.append("\\]" if lead == "]" else lead)
                    i += 1
        elif char == "$" and not multiline:
            out.append("\\Z")  # RE2's $ never matches before a final newline; Python's does
        elif source.startswith("(?<", i) and source[i + 3 : i + 4] not in ("=", "!"):
            out.append("(?P<")  # RE2 accepts (?<name>...), Python 3.11 only (?P<name>...)
            i += 3
            continue
        else:
            out.append(char)
        i += 1
    return "".join(out)


def _compile(source: str, flags: str) -> re.Pattern[str]:
    bits = 0
    for flag in flags:
        bits |= _FLAG_BITS[flag]
    multiline = "m" in flags or _INLINE_MULTILINE.search(source) is not None
    with warnings.catch_warnings():  # Python warns about some sets that RE2 reads plainly
        warnings.simplefilter("ignore")
        try:
            return re.compile(_translate(source, multiline), bits)
        except (OverflowError, RecursionError) as exc:  # a{99999999999}, or (((...))) deep
            raise re.error(str(exc) or "pattern too complex") from exc


@functools.lru_cache(maxsize=256)
def _pattern_from_value(value: str) -> re.Pattern[str] | None:
    """A variable holding ``/pattern/flags`` is a regex (GitLab 15+); anything else is not."""
    found = _VALUE_PATTERN.fullmatch(value.replace("\\/", "/"))
    if found is None:
        return None
    try:
        return _compile(found[1], found[2])
    except re.error:
        return None  # GitLab, too, falls back to treating an invalid pattern as text


def _search(text: str | None, right: str | None) -> bool:
    """``=~`` with a value on the right, as GitLab's ``Matches`` does it.

    A value that is not ``/pattern/`` stays a string, and GitLab then calls
    ``right.scan(left)``: it matches when the *left* value occurs inside the right one.
    """
    if text is None or right is None:
        return False
    pattern = _pattern_from_value(right)
    return text in right if pattern is None else pattern.search(text) is not None


# Parsing -------------------------------------------------------------------------------------


class _Parser:
    """Recursive descent, loosest first: ``||``, then ``&&``, then one comparison."""

    def __init__(self, text: str) -> None:
        self._tokens = _tokenize(text)
        self._at = 0

    def parse(self) -> _Test:
        if self._tokens[0].kind == "end":
            raise ExpressionError("empty expression", 0)
        test = _truth(self._or(0))
        token = self._tokens[self._at]
        if token.kind == ")":
            raise ExpressionError("unmatched ')'", token.pos)
        if token.kind != "end":
            after = self._tokens[self._at - 1].text
            raise ExpressionError(
                f"expected an operator (==, !=, =~, !~, &&, ||) after {after!r}, "
                f"found {token.text!r}",
                token.pos,
            )
        return test

    def _take(self, *operators: str) -> _Token | None:
        token = self._tokens[self._at]
        if token.kind == "op" and token.text in operators:
            self._at += 1
            return token
        return None

    def _or(self, depth: int) -> _Operand:
        return self._chain(depth, "||", self._and)

    def _and(self, depth: int) -> _Operand:
        return self._chain(depth, "&&", self._comparison)

    def _chain(self, depth: int, operator: str, operand: Callable[[int], _Operand]) -> _Operand:
        operands = [operand(depth)]
        while self._take(operator):
            operands.append(operand(depth))
        if len(operands) == 1:
            return operands[0]  # so that ($VAR) stays a value that can be compared
        return _combine([_truth(o) for o in operands], every=operator == "&&")

    def _comparison(self, depth: int) -> _Operand:
        left_pos = self._tokens[self._at].pos
        left = self._primary(depth)
        op = self._take(*_COMPARISONS)
        if op is None:
            return left
        right_pos = self._tokens[self._at].pos
        right = self._primary(depth)
        if again := self._take(*_COMPARISONS):
            raise ExpressionError(
                "comparisons cannot be chained: join them with && or ||", again.pos
            )
        return _compare(left, left_pos, op, right, right_pos)

    def _primary(self, depth: int) -> _Operand:
        token = self._tokens[self._at]
        self._at += 1
        if token.kind == "var":
            name = token.value
            return _Value(lambda v: v.get(name), token)
        if token.kind == "str":
            value = token.value
            return _Value(lambda v: value, token)
        if token.kind == "null":
            return _Value(lambda v: None, token)
        if token.kind == "regex":
            try:
                return _Regex(_compile(token.value, token.flags), token)
            except re.error as exc:
                raise ExpressionError(f"invalid regex {token.text}: {exc.msg}", token.pos) from exc
        if token.kind == "(":
            if depth >= _MAX_DEPTH:
                raise ExpressionError(f"more than {_MAX_DEPTH} nested parentheses", token.pos)
            inner = self._or(depth + 1)
            close = self._tokens[self._at]
            if close.kind == "end":
                raise ExpressionError(f"'(' at {token.pos} is never closed", token.pos)
            if close.kind != ")":
                raise ExpressionError(
                    f"expected ')' to close '(' at {token.pos}, found {close.text!r}", close.pos
                )
            self._at += 1
            return inner
        if self._at == 1:
            raise ExpressionError(f"expected a value first, found {token.text!r}", token.pos)
        after = self._tokens[self._at - 2].text
        found = "" if token.kind == "end" else f", found {token.text!r}"
        raise ExpressionError(f"expected a value after {after!r}{found}", token.pos)


def _truth(operand: _Operand) -> _Test:
    if isinstance(operand, _Value):
        get = operand.get
        return lambda v: bool(get(v))
    if isinstance(operand, _Regex):
        raise ExpressionError(
            f"a regex alone is not a condition: match it, as in $VAR =~ {operand.token.text}",
            operand.token.pos,
        )
    return operand


def _compare(left: _Operand, left_pos: int, op: _Token, right: _Operand, right_pos: int) -> _Test:
    if not isinstance(left, _Value):
        raise _misplaced(left, f"the left side of {op.text!r}", left_pos)
    get_left = left.get
    if op.text in ("==", "!="):
        if not isinstance(right, _Value):
            raise _misplaced(right, f"the right side of {op.text!r}", right_pos)
        get_right = right.get
        if op.text == "==":
            return lambda v: get_left(v) == get_right(v)
        return lambda v: get_left(v) != get_right(v)
    matches: _Test
    if isinstance(right, _Regex):
        search = right.pattern.search

        def matches(v: Mapping[str, str]) -> bool:
            text = get_left(v)
            return text is not None and search(text) is not None

    elif isinstance(right, _Value):
        get_right = right.get

        def matches(v: Mapping[str, str]) -> bool:
            return _search(get_left(v), get_right(v))

    else:
        raise _misplaced(right, f"the right side of {op.text!r}", right_pos)
    return matches if op.text == "=~" else lambda v: not matches(v)


def _misplaced(operand: _Operand, where: str, pos: int) -> ExpressionError:
    what = "a regex (match one with =~)" if isinstance(operand, _Regex) else "a condition"
    return ExpressionError(f"{where} must be a variable, string or null, not {what}", pos)


def _combine(tests: list[_Test], every: bool) -> _Test:
    if len(tests) == 2:
        first, second = tests
        if every:
            return lambda v: first(v) and second(v)
        return lambda v: first(v) or second(v)
    if every:
        return lambda v: all(test(v) for test in tests)
    return lambda v: any(test(v) for test in tests)
