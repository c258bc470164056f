"""Variable expansion, as the runner expands values and GitLab expands variables in variables."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferrous.pipeline_config.variables import expand, expand_mapping, reference_cycles

VARIABLES = {"A": "alpha", "B": "beta", "EMPTY": "", "A_1": "underscored", "_X": "x"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text", "plain text"),
        ("", ""),
        ("$A", "alpha"),
        ("${A}", "alpha"),
        ("$A/$B", "alpha/beta"),
        ("$A$B", "alphabeta"),
        ("${A}B", "alphaB"),
        ("$AB", ""),  # the name is AB, which is undefined
        ("$A_1", "underscored"),
        ("$A_1x", ""),
        ("$_X", "x"),
        ("pre-${A}-post", "pre-alpha-post"),
        ("$EMPTY|", "|"),
        ("$UNDEFINED", ""),
        ("${UNDEFINED}", ""),
        ("a $UNDEFINED b", "a  b"),
        # $$ is a literal dollar, and what follows it is not a reference
        ("$$", "$"),
        ("$$A", "$A"),
        ("$$$A", "$alpha"),
        ("$$$$", "$$"),
        ("cost: 5$$", "cost: 5$"),
        # anything else with a $ stays as written
        ("$", "$"),
        ("price $", "price $"),
        ("$1", "$1"),
        ("$1A", "$1A"),
        ("$(date)", "$(date)"),
        ("$-", "$-"),
        ("$ A", "$ A"),
        ("${", "${"),
        ("${A", "${A"),
        ("${1}", "${1}"),
        ("${A-B}", "${A-B}"),
        ("${}", "${}"),
        ("$é", "$é"),
        ("é$A", "éalpha"),
        ("${A}}", "alpha}"),
        ("{$A}", "{alpha}"),
    ],
)
def test_expand(text: str, expected: str) -> None:
    assert expand(text, VARIABLES) == expected


def test_expand_does_not_expand_inserted_values_again() -> None:
    assert expand("$A", {"A": "$B", "B": "no"}) == "$B"
    assert expand("$A", {"A": "$$"}) == "$$"


@pytest.mark.parametrize(
    ("variables", "raw", "expected"),
    [
        ({}, (), {}),
        ({"A": "a"}, (), {"A": "a"}),
        ({"A": "$B/x", "B": "b"}, (), {"A": "b/x", "B": "b"}),
        ({"B": "b", "A": "$B/x"}, (), {"B": "b", "A": "b/x"}),
        (
            {"A": "1-$B", "B": "2-${C}", "C": "3"},
            (),
            {"A": "1-2-3", "B": "2-3", "C": "3"},
        ),
        (
            {"A": "[$B]", "B": "[$C]", "C": "[$D]", "D": "d"},
            (),
            {"A": "[[[d]]]", "B": "[[d]]", "C": "[d]", "D": "d"},
        ),
        ({"A": "$B $B", "B": "$C$C", "C": "c"}, (), {"A": "cc cc", "B": "cc", "C": "c"}),
        ({"A": "$UNDEFINED-x"}, (), {"A": "-x"}),
        ({"A": "$$B", "B": "b"}, (), {"A": "$B", "B": "b"}),
        # a value is inserted as expanded, never scanned again
        ({"A": "$$B", "C": "<$A>", "B": "b"}, (), {"A": "$B", "C": "<$B>", "B": "b"}),
        ({"A": "$1 and $(pwd)", "B": "$A"}, (), {"A": "$1 and $(pwd)", "B": "$1 and $(pwd)"}),
        # expand: false keeps the value verbatim, and a reference inserts it verbatim
        ({"R": "$A and $$", "A": "a"}, ("R",), {"R": "$A and $$", "A": "a"}),
        ({"R": "$A", "A": "a", "D": "<$R>"}, ("R",), {"R": "$A", "A": "a", "D": "<$A>"}),
        ({"D": "<${R}>", "R": "$$x"}, ("R",), {"D": "<$$x>", "R": "$$x"}),
        ({"R": "$R"}, ("R",), {"R": "$R"}),
        ({"A": "$B", "B": "$A"}, ("B",), {"A": "$A", "B": "$A"}),
        ({"A": "a"}, ("NOT_DEFINED",), {"A": "a"}),
        # cycles stay as written, the rest still expands
        ({"A": "$A"}, (), {"A": "$A"}),
        ({"A": "x${A}y"}, (), {"A": "x${A}y"}),
        ({"A": "$B", "B": "$A"}, (), {"A": "$B", "B": "$A"}),
        ({"A": "1$B", "B": "2$C", "C": "3$A"}, (), {"A": "1$B", "B": "2$C", "C": "3$A"}),
        (
            {"A": "$B+$D", "B": "$A", "D": "d", "E": "($A)"},
            (),
            {"A": "$B+d", "B": "$A", "D": "d", "E": "($B+d)"},
        ),
        ({"A": "$A$$A"}, (), {"A": "$A$A"}),
    ],
)
def test_expand_mapping(
    variables: dict[str, str], raw: tuple[str, ...], expected: dict[str, str]
) -> None:
    assert expand_mapping(variables, raw) == expected


def test_expand_mapping_keeps_the_order_of_definition() -> None:
    variables = {"Z": "$A", "M": "m", "A": "$M"}
    assert list(expand_mapping(variables)) == ["Z", "M", "A"]


def test_expand_mapping_leaves_its_argument_alone() -> None:
    variables = {"A": "$B", "B": "b"}
    expand_mapping(variables)
    assert variables == {"A": "$B", "B": "b"}


def test_a_long_chain_does_not_recurse() -> None:
    variables = {f"V{i}": f"${{V{i + 1}}}" for i in range(5000)} | {"V5000": "end"}
    assert expand_mapping(variables)["V0"] == "end"


@pytest.mark.parametrize(
    ("variables", "raw", "cycles"),
    [
        ({"A": "$B", "B": "b"}, (), []),
        ({"A": "$A"}, (), [["A"]]),
        ({"B": "$A", "A": "$B", "C": "$A", "D": "$D"}, (), [["A", "B"], ["D"]]),
        ({"A": "$B", "B": "$A"}, ("A",), []),
        ({"A": "$$A"}, (), []),
    ],
)
def test_reference_cycles(
    variables: dict[str, str], raw: tuple[str, ...], cycles: list[list[str]]
) -> None:
    assert reference_cycles(variables, raw) == cycles


# Property tests -------------------------------------------------------------------------------

NAMES = ["A", "B", "C", "D", "E"]
chunks = st.text(alphabet=st.characters(blacklist_characters="$"), max_size=5)
references = st.tuples(st.sampled_from(NAMES), st.booleans())


def render(parts: list[str | tuple[str, bool]]) -> str:
    out = []
    for part in parts:
        if isinstance(part, tuple):
            name, braced = part
            out.append(f"${{{name}}}" if braced else f"${name}")
        else:
            out.append(part)
    return "".join(out)


@given(
    text=st.text(alphabet=st.characters(blacklist_characters="$")),
    env=st.dictionaries(st.text(), st.text()),
)
def test_text_without_a_dollar_is_left_alone(text: str, env: dict[str, str]) -> None:
    assert expand(text, env) == text


@given(text=st.text(), env=st.dictionaries(st.sampled_from(NAMES), st.text()))
def test_expand_never_raises(text: str, env: dict[str, str]) -> None:
    assert isinstance(expand(text, env), str)


@given(
    parts=st.lists(st.one_of(chunks, references)),
    env=st.dictionaries(st.sampled_from(NAMES), st.text(max_size=5)),
)
def test_expand_substitutes_each_reference(
    parts: list[str | tuple[str, bool]], env: dict[str, str]
) -> None:
    # a chunk must not extend the name of the reference before it
    safe = [f" {part}" if isinstance(part, str) else part for part in parts if part != ""]
    expected = "".join(env.get(part[0], "") if isinstance(part, tuple) else part for part in safe)
    assert expand(render(safe), env) == expected


values = st.lists(st.one_of(chunks, references, st.just("$$")), max_size=4).map(render)
mappings = st.dictionaries(st.sampled_from(NAMES), values)


@settings(deadline=2000)
@given(variables=mappings, raw=st.sets(st.sampled_from(NAMES)), seed=st.randoms())
def test_expand_mapping_terminates_and_ignores_definition_order(
    variables: dict[str, str], raw: set[str], seed: random.Random
) -> None:
    result = expand_mapping(variables, raw)
    assert list(result) == list(variables)
    shuffled = list(variables.items())
    seed.shuffle(shuffled)
    assert expand_mapping(dict(shuffled), raw) == result
    for name in raw & variables.keys():
        assert result[name] == variables[name]


@settings(deadline=2000)
@given(variables=mappings, raw=st.sets(st.sampled_from(NAMES)))
def test_outside_cycles_each_value_is_its_expansion_over_the_results(
    variables: dict[str, str], raw: set[str]
) -> None:
    result = expand_mapping(variables, raw)
    in_cycles = {name for cycle in reference_cycles(variables, raw) for name in cycle}
    for name, value in variables.items():
        if name not in raw and name not in in_cycles:
            assert result[name] == expand(value, result)
