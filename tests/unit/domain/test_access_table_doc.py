"""docs/server.md prints the role x permission table: it must be ``GRANTS`` as it is now.

When the policy changes, this test fails and shows the table to paste between the markers.
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from ferrous.domain.access import GRANTS, SERVICE_SCOPES, Permission, Role

DOC = Path(__file__).resolve().parents[3] / "docs" / "server.md"
START = "<!-- permission table: generated from domain.access.GRANTS -->"
END = "<!-- end of permission table -->"
ROLES = (Role.VIEWER, Role.DEVELOPER, Role.ADMIN)


def permission_table() -> str:
    rows = [
        "| permission | viewer | developer | admin | service token |",
        "|---|:-:|:-:|:-:|:-:|",
    ]
    for permission in get_args(Permission):
        cells = ["✓" if permission in GRANTS[role] else "" for role in ROLES]
        if permission == "public":
            service = "✓"
        elif permission in SERVICE_SCOPES:
            service = "if a scope"
        else:
            service = ""
        if permission == "agent:protocol":
            cells[-1] = ""
            service = "agents only"
        rows.append(f"| `{permission}` | {' | '.join(cells)} | {service} |")
    return "\n".join(rows)


def test_the_documented_table_is_the_policy() -> None:
    text = DOC.read_text()
    assert START in text, f"{DOC} lost its table's start marker"
    assert END in text, f"{DOC} lost its table's end marker"
    documented = text.split(START, 1)[1].split(END, 1)[0].strip()
    expected = permission_table()
    assert documented == expected, f"paste this into {DOC.name}:\n{expected}"


def test_the_table_says_what_the_grants_say() -> None:
    """A check of the generator itself, on rows whose meaning is known."""
    lines = permission_table().splitlines()
    assert "| `builds:read` | ✓ | ✓ | ✓ | if a scope |" in lines
    assert "| `builds:cancel` |  | ✓ | ✓ | if a scope |" in lines
    assert "| `users:admin` |  |  | ✓ | if a scope |" in lines
    assert "| `account` | ✓ | ✓ | ✓ |  |" in lines
    assert "| `agent:protocol` |  |  |  | agents only |" in lines
