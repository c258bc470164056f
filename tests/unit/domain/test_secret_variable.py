"""Secret variables: names a shell takes, values a job can get and a log can mask."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ferrous.domain.errors import InvalidValue
from ferrous.domain.secret_variable import (
    MAX_NAME,
    MAX_VALUE_BYTES,
    SecretVariable,
    check_name,
    check_value,
    is_protected_ref,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("name", ["DEPLOY_KEY", "_x", "a1", "A" * MAX_NAME])
def test_names_a_shell_takes(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "1ABC", "DEPLOY-KEY", "A B", "ÄPFEL", "X=1", "A\n", "A" * (MAX_NAME + 1)]
)
def test_other_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidValue, match="letters, digits or '_'"):
        check_name(name)


def test_a_masked_value_is_one_line_of_eight_characters_or_more() -> None:
    assert check_value("12345678", masked=True) == "12345678"
    with pytest.raises(InvalidValue, match="at least 8 characters") as short:
        check_value("s3cr3t!", masked=True)
    assert "s3cr3t!" not in short.value.message
    for value in ("first-line\nsecond-line", "one-line-with-cr\r"):
        with pytest.raises(InvalidValue, match="single line") as lines:
            check_value(value, masked=True)
        assert value.strip() not in lines.value.message
    # unmasked, the same values are fine: a PEM key is several lines
    assert check_value("short", masked=False) == "short"
    assert check_value("a\nb", masked=False) == "a\nb"


def test_value_limits() -> None:
    check_value("é" * (MAX_VALUE_BYTES // 2), masked=False)  # counted in UTF-8 bytes
    with pytest.raises(InvalidValue, match="at most"):
        check_value("é" * (MAX_VALUE_BYTES // 2) + "x", masked=False)
    with pytest.raises(InvalidValue, match="empty"):
        check_value("", masked=False)
    with pytest.raises(InvalidValue, match="NUL"):
        check_value("abcd\0efgh", masked=False)


def test_create_replace_and_a_repr_without_the_sealed_value() -> None:
    secret = SecretVariable.create(
        project_id=None, name="TOKEN", sealed="v1:abcd:SEALED", protected=False, masked=True, now=T0
    )
    assert (secret.project_id, secret.created_at, secret.updated_at) == (None, T0, T0)
    later = T0 + timedelta(minutes=1)
    secret.replace(sealed="v1:abcd:OTHER", protected=True, masked=False, now=later)
    assert (secret.sealed, secret.protected, secret.masked) == ("v1:abcd:OTHER", True, False)
    assert (secret.created_at, secret.updated_at) == (T0, later)
    assert "OTHER" not in repr(secret)
    assert "TOKEN" in repr(secret)
    with pytest.raises(InvalidValue):
        SecretVariable.create(
            project_id="p", name="9", sealed="x", protected=False, masked=False, now=T0
        )


@pytest.mark.parametrize(
    ("branch", "tag", "protected"),
    [
        ("main", None, True),
        ("feature", None, False),
        (None, "v1.0", True),
        (None, None, False),  # a bare commit
        ("", None, False),
    ],
)
def test_tags_and_the_default_branch_are_protected(
    branch: str | None, tag: str | None, protected: bool
) -> None:
    assert is_protected_ref(branch=branch, tag=tag, default_branch="main") is protected
